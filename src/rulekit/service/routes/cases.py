"""``/cases``: open cases, read them, their history and why they are where they are, send
events, update facts.

Who may do what is :mod:`rulekit.service.auth`'s rule; a case the caller may not
see does not exist for it (404 ``case_not_found``, never 403).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel

from rulekit.service.auth import Caller
from rulekit.service.dependencies import Served, Who
from rulekit.service.models import (
    CaseList,
    CaseView,
    ExplanationView,
    OpenCase,
    RecordList,
    RecordView,
    SendEvent,
    StepView,
    UpdateFacts,
    rendered,
    shown_rule,
)
from rulekit.service.problems import Problem
from rulekit.stores import CaseNotFound, SqlStore, StoredCase

router = APIRouter(tags=["cases"])

KEY_HEADER = Header(
    alias="Idempotency-Key",
    max_length=200,
    description="The caller's own key for this request: the same request again returns the first "
    "result and changes nothing; another request with it is 422 idempotency_key_reused.",
)
Key = Annotated[str | None, KEY_HEADER]
#: a record's seq is below this (PostgreSQL keeps it in an ``integer``): a greater ``after``
#: is refused (422), never passed to a database that cannot hold it (SQLite: a 500)
MAX_SEQ = (1 << 31) - 1


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """What an idempotency key is compared by: SHA-256 over the method, the path and the
    body as canonical JSON (the fields as validated, keys sorted)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def _visible(store: SqlStore, who: Caller, case_id: str) -> StoredCase:
    """The case, if the caller may see it; otherwise it does not exist for the caller."""
    case = store.get(case_id)
    if not who.sees(case.parties):
        raise CaseNotFound(case_id)  # not 403: a case a caller may not see does not exist for it
    return case


@router.post("/cases", response_model=StepView, status_code=201)
def open_case(
    body: OpenCase, request: Request, service: Served, who: Who, key: Key = None
) -> Response:
    """Open a case. An admin opens any, with any id and parties; another caller one whose
    only party is itself, with a random id. A key without an id is the caller's own: the
    same request again answers the case it opened."""
    if body.id is not None and not who.admin:
        raise Problem("forbidden", "only an admin may choose a case's id: leave `id` out")
    if not who.may_open(body.parties):
        raise Problem("forbidden", who.may_not_open)

    case, result = service.step(
        "open",
        lambda: service.store.open(
            body.workflow,
            body.facts,
            policy=body.policy,
            id=body.id,
            parties=body.parties,
            key=key,
            caller=who.identity,
            fingerprint=fingerprint("POST", request.url.path, body),
            any_version=who.admin,
            by=None if who.admin else who.actor,
        ),
    )
    return rendered(StepView.of(result, case), 201)


@router.get("/cases", response_model=CaseList)
def list_cases(
    service: Served,
    who: Who,
    workflow: str | None = None,
    state: str | None = None,
    after: Annotated[str | None, Query(description="the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Cases the caller may see, by workflow and state, in id order."""
    if who.actor is None and not who.admin:
        raise Problem("forbidden", "this token sees no cases")
    found = service.store.cases(
        workflow=workflow, state=state, party=who.party, after=after, limit=limit
    )
    page = CaseList(
        cases=[CaseView.of(c) for c in found],
        next=found[-1].id if len(found) == limit else None,
    )
    return rendered(page)


@router.get("/cases/{case_id}", response_model=CaseView)
def read_case(case_id: str, service: Served, who: Who) -> Response:
    """A case: state, facts, what it accepts now, its next deadline and its history."""
    store = service.store
    case = _visible(store, who, case_id)
    return rendered(CaseView.of(case, store.allowed(case_id), store.history(case_id)))


@router.get("/cases/{case_id}/history", response_model=RecordList)
def case_history(
    case_id: str,
    service: Served,
    who: Who,
    after: Annotated[
        int, Query(ge=-1, le=MAX_SEQ, description="only records with a greater seq")
    ] = -1,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Response:
    """The case's history, a page at a time (the same shape as a page of cases)."""
    _visible(service.store, who, case_id)
    found = service.store.history(case_id, after=after, limit=limit)
    page = RecordList(
        records=[RecordView.of(r) for r in found],
        next=found[-1].seq if len(found) == limit else None,
    )
    return rendered(page)


@router.get("/cases/{case_id}/explain", response_model=ExplanationView)
def explain_case(
    case_id: str,
    service: Served,
    who: Who,
    why: Annotated[
        str, Query(max_length=200, description="state (the default) or effect:NAME")
    ] = "state",
    everything: Annotated[
        bool, Query(alias="all", description="every record, not only the causal chain")
    ] = False,
) -> Response:
    """Why the case is in its state (or emitted an effect): the chain of rules in its
    history, each with its trigger, its condition with the values it saw and its cited
    clause, as ``rulekit explain --format json`` shows it (docs/runtime.md)."""
    from rulekit.runtime.explain import QuestionError, explain, explanation_data

    store = service.store
    case = _visible(store, who, case_id)
    if why.startswith("refusal"):
        raise Problem(
            "invalid_request", "a store keeps no refused steps: ask why=state or why=effect:NAME"
        )
    policy = store.engine(case.policy).policy
    # rules named as the API names them everywhere: by file name, not the server's folders
    history = [dataclasses.replace(r, rule=shown_rule(r.rule)) for r in store.history(case_id)]
    try:
        explained = explain(policy, case.workflow, history, why, everything=everything)
    except QuestionError as e:
        raise Problem("invalid_request", str(e)) from None
    return rendered(ExplanationView.of(explanation_data(explained)))


@router.post("/cases/{case_id}/events", response_model=StepView)
def send_event(
    case_id: str, body: SendEvent, request: Request, service: Served, who: Who, key: Key = None
) -> Response:
    """Send an event as the caller's actor."""
    store = service.store
    if who.actor is None:
        _visible(store, who, case_id)  # a case it cannot see is a 404 first
        raise Problem("forbidden", "this token has no actor to send events as")
    actor = who.actor
    case, result = service.step(
        "event",
        lambda: store.send(
            case_id,
            body.event,
            actor,
            body.data,
            key=key,
            only_if=who.sees,
            caller=who.identity,
            fingerprint=fingerprint("POST", request.url.path, body),
        ),
    )
    return rendered(StepView.of(result, case))


@router.post("/cases/{case_id}/facts", response_model=StepView)
def update_facts(
    case_id: str, body: UpdateFacts, request: Request, service: Served, who: Who, key: Key = None
) -> Response:
    """Change facts from outside: the integration (an admin) any fact, the order was
    shipped, say; a party of the case, as its actor, only the facts the policy lets that
    actor supply (403 fact_not_allowed otherwise)."""
    store = service.store
    case, result = service.step(
        "update",
        lambda: store.update(
            case_id,
            body.facts,
            key=key,
            caller=who.identity,
            fingerprint=fingerprint("POST", request.url.path, body),
            only_if=who.sees,
            by=None if who.admin else who.actor,
        ),
    )
    return rendered(StepView.of(result, case))
