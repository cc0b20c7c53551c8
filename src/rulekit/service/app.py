"""The HTTP service: cases of compiled policies, run durably for other services.

``rulekit serve rules/x.rk`` serves the policies given on the store given
(SQLite by default), with a deadline worker in the same process;
``rulekit worker`` runs more workers elsewhere. The API is described at
``/openapi.json`` (and browsable at ``/docs``); docs/service.md is the guide.

Every request but ``/health``, ``/metrics`` and the OpenAPI document needs a
bearer token (see :mod:`rulekit.service.auth` for who may do what), checked before a
byte of the body is read; bodies are limited in size (``413``), and facts,
payloads and parties in their shape (:data:`LIMITS`). Errors are JSON,
``{"error": {"code": ..., "message": ...}}``, with the refusal codes of the
engine and the store's own codes, and the HTTP status that fits each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from pydantic import AfterValidator, BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rulekit.core import __version__
from rulekit.core.errors import EvaluationError, StepRefused
from rulekit.expr.convert import to_data
from rulekit.policy import Policy
from rulekit.runtime.model import Record, StepResult
from rulekit.runtime.timeline import record_data
from rulekit.service.auth import Caller, Tokens
from rulekit.stores import CaseNotFound, OutboxEffect, SqlStore, StoredCase, StoreError
from rulekit.stores.worker import Worker

log = logging.getLogger("rulekit.service")

#: HTTP status of each error code
STATUS = {
    "unauthorized": 401,
    "forbidden": 403,
    "case_not_found": 404,
    "effect_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "case_exists": 409,
    "unknown_event": 422,
    "event_not_allowed": 409,
    "actor_not_allowed": 403,
    "guard_failed": 409,
    "invalid_payload": 422,
    "invalid_fact": 422,
    "case_closed": 409,
    "unknown_workflow": 422,
    "unknown_policy": 422,
    "invalid_request": 422,
    "idempotency_key_reused": 422,
    "payload_too_large": 413,
    "evaluation_error": 422,
    "commit_unknown": 503,
    "store_unavailable": 503,
    "store_damaged": 503,
    "fact_not_allowed": 403,
}

#: the bounds of a request (docs/service.md, "Limits"); ``max_body`` is the default of
#: ``rulekit serve --max-body`` (and of :class:`Service`'s ``max_body``)
LIMITS = {
    "max_body": 1 << 20,  # bytes of a request body
    "max_parties": 16,  # entries of a case's parties
    "max_text": 200,  # characters of a party's actor or principal
    "max_values": 1000,  # values in the facts or the payload of one request (maps and lists too)
    "max_depth": 16,  # nesting of maps and lists in them
}

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
#: a string a database text column can hold (PostgreSQL's cannot hold NUL)
TEXT_PATTERN = r"^[^\x00]*$"
Text = Annotated[str, Field(pattern=TEXT_PATTERN, max_length=LIMITS["max_text"])]
KEY_HEADER = Header(
    alias="Idempotency-Key",
    max_length=200,
    description="The caller's own key for this request: the same request again returns the first "
    "result and changes nothing; another request with it is 422 idempotency_key_reused.",
)


class Problem(Exception):
    """An error the service answers with (code -> status in :data:`STATUS`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- request and response bodies -------------------------------------------------------------
def _bounded(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Facts or a payload within :data:`LIMITS`, of Unicode text only (a string with a lone
    surrogate, which JSON can spell as ``\\udfff``, is no text a database can store)."""
    if value is None:
        return None
    values, limit, depth_limit = 0, LIMITS["max_values"], LIMITS["max_depth"]
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        values += 1
        if values > limit:
            raise ValueError(f"more than {limit} values (the limit of one request)")
        if isinstance(item, dict | list):
            if depth > depth_limit:
                raise ValueError(f"nested deeper than {depth_limit} (the limit of one request)")
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for k, v in children:
                if isinstance(k, str):
                    _text(k)
                todo.append((v, depth + 1))
        elif isinstance(item, str):
            _text(item)
    return value


def _text(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{s!r} is not Unicode text (a lone surrogate)") from None


Data = Annotated[dict[str, Any], AfterValidator(_bounded)]


class OpenCase(BaseModel):
    workflow: str = Field(description="the workflow of the policy to open a case of")
    facts: Data = Field(default_factory=dict, description="initial facts (nested or dotted)")
    policy: str | None = Field(
        default=None,
        description="policy name, or version hash: of a current version (an admin: of any "
        "stored version); default: the only policy",
    )
    id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="the case id (default: a random one); only an admin may choose it",
    )
    parties: dict[Text, Text] = Field(
        default_factory=dict,
        max_length=LIMITS["max_parties"],
        description='who the case belongs to, per actor: {"merchant": "shop-1", "consumer": '
        '"user-7"}; a caller that is not an admin names only itself: {"consumer": "user-7"}',
    )


class SendEvent(BaseModel):
    event: str
    data: Data | None = Field(default=None, description="the event's payload")


class UpdateFacts(BaseModel):
    facts: Data = Field(description="fact paths (or nested maps) to their new values")


class ClaimEffects(BaseModel):
    limit: int = Field(default=100, ge=1, le=1000)
    lease_seconds: float = Field(default=60, gt=0, le=86400)


class FailEffect(BaseModel):
    error: str = Field(max_length=2000, pattern=TEXT_PATTERN)
    retry_in_seconds: float = Field(default=0, ge=0, le=86400 * 7)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class RecordView(BaseModel):
    seq: int
    at: str
    kind: str
    source: str | None
    target: str | None
    event: str | None
    actor: str | None
    data: dict[str, Any] | None
    cite: str | None
    guard: str | None
    reads: dict[str, Any]
    effects: list[dict[str, Any]]
    rule: str | None


class EffectView(BaseModel):
    key: str = Field(description="stable across deliveries: deduplicate on it")
    case_id: str
    seq: int
    name: str
    args: dict[str, Any]
    at: str
    status: str
    attempts: int
    last_error: str | None


class CaseView(BaseModel):
    id: str
    policy: str
    workflow: str
    state: str
    final: bool
    outcome: str | None
    facts: dict[str, Any]
    next_deadline: str | None
    version: int
    parties: dict[str, str]
    opened_at: str
    updated_at: str
    allowed: dict[str, list[str]] | None = Field(
        default=None, description="events accepted now, each with the actors that may send it"
    )
    history: list[RecordView] | None = None


class StepView(BaseModel):
    state: str
    final: bool
    repeated: bool = Field(description="true when the idempotency key was seen before")
    records: list[RecordView]
    effects: list[dict[str, Any]]
    case: CaseView


class CaseList(BaseModel):
    cases: list[CaseView]
    next: str | None = Field(description="pass as `after` for the next page (null: no more)")


class RecordList(BaseModel):
    records: list[RecordView]
    next: int | None = Field(description="pass as `after` for the next page (null: no more)")


class EffectList(BaseModel):
    effects: list[EffectView]


class PolicyView(BaseModel):
    hash: str
    name: str
    version: str | None
    registered_at: str
    open_cases: int | None = Field(description="cases not final on it (null: not an admin)")
    current: bool


class PolicyList(BaseModel):
    policies: list[PolicyView]


class Health(BaseModel):
    status: str = Field(description="ok, or the store's error code (503)")
    store: str
    version: str
    database_time: str | None
    error: ErrorDetail | None = None


# -- the service -------------------------------------------------------------------------------
class Service:
    """The store, the policies served, who may call, the metrics and the in-process worker."""

    def __init__(
        self,
        store: SqlStore,
        policies: list[Policy],
        tokens: Tokens,
        *,
        worker_interval: float | None = 1.0,
        max_body: int = LIMITS["max_body"],
    ) -> None:
        self.store = store
        self.tokens = tokens
        #: bytes of a request body at most (413 payload_too_large beyond)
        self.max_body = max_body
        for policy in policies:
            store.register(policy)  # new cases pin to these versions
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rulekit_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.steps = Counter(
            "rulekit_steps",
            "Steps applied by kind and outcome (applied, repeated, or the refusal code)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rulekit_step_seconds",
            "Time to apply and commit a step",
            ["kind"],
            registry=self.registry,
        )
        self.fired = Counter(
            "rulekit_deadlines_fired",
            "Deadlines fired by the in-process worker",
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))
        self.worker = (
            Worker(store, interval=worker_interval, on_fired=self.fired.inc)
            if worker_interval
            else None
        )

    def step(self, kind: str, run: Callable[[], StepResult]) -> StepResult:
        start = time.perf_counter()
        try:
            result = run()
        except StepRefused as e:
            self.steps.labels(kind, e.code).inc()
            raise
        self.latency.labels(kind).observe(time.perf_counter() - start)
        self.steps.labels(kind, "repeated" if result.repeated else "applied").inc()
        return result


class _StoreCollector:
    """Case counts by state, pending deadlines and the outbox, read from the store at scrape time."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cases = GaugeMetricFamily(
            "rulekit_cases", "Cases by workflow and state", labels=["workflow", "state"]
        )
        for (workflow, state), n in sorted(self.store.count().items()):
            cases.add_metric([workflow, state], n)
        yield cases
        pending = self.store.pending()
        yield GaugeMetricFamily(
            "rulekit_deadlines_pending",
            "Deadlines not yet fired",
            value=pending.get("deadlines", 0),
        )
        effects = GaugeMetricFamily(
            "rulekit_effects", "Outbox effects by status", labels=["status"]
        )
        for status in ("pending", "done", "dead"):
            effects.add_metric([status], pending.get(f"effects_{status}", 0))
        yield effects


# -- views ------------------------------------------------------------------------------------
def _time(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _case(
    c: StoredCase,
    allowed: Mapping[str, tuple[str, ...]] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": c.id,
        "policy": c.policy,
        "workflow": c.workflow,
        "state": c.state,
        "final": c.final,
        "outcome": c.outcome,
        "facts": to_data(dict(c.facts)),
        "next_deadline": _time(c.next_deadline),
        "version": c.version,
        "parties": dict(c.parties),
        "opened_at": c.opened_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "allowed": {k: list(v) for k, v in allowed.items()} if allowed is not None else None,
        "history": history,
    }


def _step(result: StepResult, case: StoredCase) -> dict[str, Any]:
    return {
        "state": result.state,
        "final": result.final,
        "repeated": result.repeated,
        "records": [_record(r) for r in result.records],
        "effects": [{"name": e.name, "args": to_data(dict(e.args))} for e in result.effects],
        "case": _case(case),
    }


def _record(r: Record) -> dict[str, Any]:
    """A history record as the API shows it: its rule named by the policy file's name and
    line (``kuaishou_after_sales.rk:113:5``), never by the server's folders."""
    data = record_data(r)
    if r.rule:
        path, _, where = r.rule.rpartition(":")
        path, _, line = path.rpartition(":")
        name = path.replace("\\", "/").rsplit("/", 1)[-1]  # a POSIX or a Windows path
        data["rule"] = f"{name}:{line}:{where}" if path else r.rule
    return data


def _effect(e: OutboxEffect) -> dict[str, Any]:
    return {
        "key": e.key,
        "case_id": e.case_id,
        "seq": e.seq,
        "name": e.name,
        "args": to_data(dict(e.args)),
        "at": e.at.isoformat(),
        "status": e.status,
        "attempts": e.attempts,
        "last_error": e.last_error,
    }


def _error(code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=STATUS.get(code, 400),
        headers=headers,
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "no or unknown bearer token"),
        (403, "the caller may not do this"),
        (404, "no such case, or not one the caller may see"),
        (409, "refused in the case's current state"),
        (413, "the request body is larger than the limit"),
        (422, "invalid input"),
        (503, "the store is unavailable"),
    )
}


# -- the application --------------------------------------------------------------------------
#: what needs no token: the health check, the metrics and the API's description
OPEN_PATHS = frozenset({"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
#: the methods metrics name; any other counts as ``other`` (a label set of fixed size)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: where :class:`_Gate` leaves the caller it authenticated, in the request's scope
CALLER = "rulekit.caller"
#: the bearer scheme, for the OpenAPI document (authentication itself is :class:`_Gate`'s)
BEARER = HTTPBearer(scheme_name="bearer", auto_error=False)


def _authenticate(tokens: Tokens, authorization: str | None) -> Caller | JSONResponse:
    """The caller a bearer token names, or the 401 that says what is wrong."""
    if authorization is None or not authorization.lower().startswith("bearer "):
        message = "send a bearer token: Authorization: Bearer <token>"
    else:
        found = tokens.caller(authorization[7:].strip())
        if found is not None:
            return found
        message = "unknown bearer token"
    return _error("unauthorized", message, {"WWW-Authenticate": "Bearer"})


class _Gate:
    """Before the application sees a request: a NUL in the path or query is refused, the
    caller is authenticated (all but :data:`OPEN_PATHS`), and the body is read, up to
    ``max_body`` bytes (413 beyond, read no further: a declared length is refused before
    any of it is read). Every request is counted in the metrics, with labels from fixed
    sets: the route's template (or ``unmatched``), the method (or ``other``), the status."""

    def __init__(self, app: ASGIApp, service: Service, routes: list[BaseRoute]) -> None:
        self.app = app
        self.service = service
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, counted)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.service.requests.labels(self._route(scope), method, str(status)).inc()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if "\x00" in scope["path"] or any(
            "\x00" in k + v for k, v in request.query_params.multi_items()
        ):
            # the database could not compare it with anything (PostgreSQL's text holds no NUL)
            refusal = _error("invalid_request", "a NUL character in the path or the query")
            await refusal(scope, receive, send)
            return
        if scope["path"] not in OPEN_PATHS:
            caller = _authenticate(self.service.tokens, request.headers.get("authorization"))
            if isinstance(caller, JSONResponse):
                await caller(scope, receive, send)
                return
            scope[CALLER] = caller
        body = await self._body(request, receive)
        if body is None:
            too_large = _error(
                "payload_too_large",
                f"the request body is larger than {self.service.max_body} bytes",
                {"Connection": "close"},
            )
            await too_large(scope, receive, send)
            return
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _body(self, request: Request, receive: Receive) -> bytes | None:
        """The whole body, or None when it is longer than the limit (read no further)."""
        limit = self.service.max_body
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing more comes
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _route(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return str(getattr(route, "path", "unmatched"))
        return "unmatched"


def _caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> Caller:
    """The caller :class:`_Gate` authenticated (``bearer`` declares the scheme in OpenAPI)."""
    caller = request.scope.get(CALLER)
    if not isinstance(caller, Caller):  # an app without its gate: nobody is let in
        raise Problem("unauthorized", "send a bearer token: Authorization: Bearer <token>")
    return caller


Who = Annotated[Caller, Depends(_caller)]


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """What an idempotency key is compared by: SHA-256 over the method, the path and the
    body as canonical JSON (the fields as validated, keys sorted)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def create_app(service: Service) -> FastAPI:
    store = service.store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if service.worker is not None:
            service.worker.start()
        yield
        if service.worker is not None:
            service.worker.stop()

    app = FastAPI(
        title="rulekit",
        version=__version__,
        description="Cases of compiled rulekit policies: open them, send events, read them, "
        "and carry out the effects they emit. See docs/service.md.",
        lifespan=lifespan,
        responses=ERRORS,
    )
    app.state.service = service

    @app.exception_handler(Problem)
    async def _problem(request: Request, e: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if e.code == "unauthorized" else None
        return _error(e.code, e.message, headers)

    @app.exception_handler(StepRefused)
    async def _refused(request: Request, e: StepRefused) -> JSONResponse:
        return _error(e.code, str(e))

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, e: StoreError) -> JSONResponse:
        return _error(e.code, e.message)

    @app.exception_handler(EvaluationError)
    async def _evaluation(request: Request, e: EvaluationError) -> JSONResponse:
        return _error("evaluation_error", str(e))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        # no such route, or not with this method: the same error body as every other error
        if e.status_code == 405:
            return _error("method_not_allowed", f"{request.method} is not allowed here")
        if e.status_code == 404:
            return _error("not_found", f"no route {request.url.path}")
        if e.status_code == 400:  # a body the framework cannot even parse: bad input like any
            return _error("invalid_request", str(e.detail))
        return JSONResponse(
            {"error": {"code": "http_error", "message": str(e.detail)}},
            status_code=e.status_code,
            headers=e.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error("invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    app.add_middleware(_Gate, service=service, routes=app.router.routes)

    def visible(who: Caller, case_id: str) -> StoredCase:
        case = store.get(case_id)
        if not who.sees(case.parties):
            raise CaseNotFound(
                case_id
            )  # not 403: a case a caller may not see does not exist for it
        return case

    def admin(who: Caller) -> None:
        if not who.admin:
            raise Problem("forbidden", "only an admin token may do this")

    @app.get("/health", response_model=Health, tags=["service"], responses={503: {"model": Health}})
    def health() -> Any:
        """The service and its store answer: the store's schema version, a policy and a case
        can be read (a cheap check, not a full one). 503 when they cannot."""
        about = {"store": store.dialect.name, "version": __version__}
        try:
            return {"status": "ok", **about, "database_time": store.check().isoformat()}
        except StoreError as e:
            error = {"code": e.code, "message": e.message}
        return JSONResponse(
            {"status": error["code"], **about, "database_time": None, "error": error},
            status_code=503,
        )

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    def metrics() -> PlainTextResponse:
        """Prometheus metrics (text format)."""
        return PlainTextResponse(
            generate_latest(service.registry).decode("utf-8"),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    @app.get("/policies", response_model=PolicyList, tags=["policies"])
    def policies(who: Who) -> dict[str, Any]:
        """Policy versions in the store; new cases pin to the current one of each name.
        How many cases are open on each: to admins only (others get null)."""
        return {
            "policies": [
                {
                    **p,
                    "registered_at": p["registered_at"].isoformat(),
                    "open_cases": p["open_cases"] if who.admin else None,
                }
                for p in store.policies()
            ]
        }

    @app.post("/cases", response_model=StepView, status_code=201, tags=["cases"])
    def open_case(
        body: OpenCase, request: Request, who: Who, key: Annotated[str | None, KEY_HEADER] = None
    ) -> dict[str, Any]:
        """Open a case. An admin opens any, with any id and parties; another caller one whose
        only party is itself, with a random id. A key without an id is the caller's own: the
        same request again answers the case it opened."""
        if body.id is not None and not who.admin:
            raise Problem("forbidden", "only an admin may choose a case's id: leave `id` out")
        if not who.may_open(body.parties):
            raise Problem("forbidden", who.may_not_open)

        opened: list[StoredCase] = []

        def run() -> StepResult:
            case, result = store.open(
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
            )
            opened.append(case)
            return result

        return _step(service.step("open", run), opened[0])

    @app.get("/cases", response_model=CaseList, tags=["cases"])
    def list_cases(
        who: Who,
        workflow: str | None = None,
        state: str | None = None,
        after: Annotated[str | None, Query(description="the last id of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Cases the caller may see, by workflow and state, in id order."""
        if who.actor is None and not who.admin:
            raise Problem("forbidden", "this token sees no cases")
        found = store.cases(
            workflow=workflow, state=state, party=who.party, after=after, limit=limit
        )
        return {
            "cases": [_case(c) for c in found],
            "next": found[-1].id if len(found) == limit else None,
        }

    @app.get("/cases/{case_id}", response_model=CaseView, tags=["cases"])
    def read_case(case_id: str, who: Who) -> dict[str, Any]:
        """A case: state, facts, what it accepts now, its next deadline and its history."""
        case = visible(who, case_id)
        history = [_record(r) for r in store.history(case_id)]
        return _case(case, store.allowed(case_id), history)

    @app.get("/cases/{case_id}/history", response_model=RecordList, tags=["cases"])
    def case_history(
        case_id: str,
        who: Who,
        after: Annotated[int, Query(ge=-1, description="only records with a greater seq")] = -1,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> dict[str, Any]:
        """The case's history, a page at a time (the same shape as a page of cases)."""
        visible(who, case_id)
        found = store.history(case_id, after=after, limit=limit)
        return {
            "records": [_record(r) for r in found],
            "next": found[-1].seq if len(found) == limit else None,
        }

    @app.post("/cases/{case_id}/events", response_model=StepView, tags=["cases"])
    def send_event(
        case_id: str,
        body: SendEvent,
        request: Request,
        who: Who,
        key: Annotated[str | None, KEY_HEADER] = None,
    ) -> dict[str, Any]:
        """Send an event as the caller's actor."""
        if who.actor is None:
            visible(who, case_id)  # a case it cannot see is a 404 first
            raise Problem("forbidden", "this token has no actor to send events as")
        actor = who.actor
        result = service.step(
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
        return _step(result, store.get(case_id))

    @app.post("/cases/{case_id}/facts", response_model=StepView, tags=["cases"])
    def update_facts(
        case_id: str,
        body: UpdateFacts,
        request: Request,
        who: Who,
        key: Annotated[str | None, KEY_HEADER] = None,
    ) -> dict[str, Any]:
        """Change facts from outside: the integration (an admin) any fact, the order was
        shipped, say; a party of the case, as its actor, only the facts the policy lets that
        actor supply (403 fact_not_allowed otherwise)."""
        result = service.step(
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
        return _step(result, store.get(case_id))

    @app.post("/effects/claim", response_model=EffectList, tags=["effects"])
    def claim(body: ClaimEffects, who: Who) -> dict[str, Any]:
        """Claim effects to carry out; acknowledge each within its lease, or it is delivered again."""
        admin(who)
        found = store.claim(limit=body.limit, lease=timedelta(seconds=body.lease_seconds))
        return {"effects": [_effect(e) for e in found]}

    @app.post("/effects/{key:path}/ack", response_model=EffectView, tags=["effects"])
    def ack(key: str, who: Who) -> dict[str, Any]:
        """The effect was carried out (acknowledging twice is harmless)."""
        admin(who)
        return _effect(store.ack(key))

    @app.post("/effects/{key:path}/fail", response_model=EffectView, tags=["effects"])
    def fail(key: str, body: FailEffect, who: Who) -> dict[str, Any]:
        """Carrying out the effect failed: retried later, dead-lettered after too many tries."""
        admin(who)
        return _effect(
            store.fail(key, body.error, retry_in=timedelta(seconds=body.retry_in_seconds))
        )

    @app.get("/effects", response_model=EffectList, tags=["effects"])
    def list_effects(
        who: Who,
        status: Annotated[str | None, Query(pattern="^(pending|done|dead)$")] = None,
        case_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Effects in the outbox (the dead letters: status=dead)."""
        admin(who)
        return {
            "effects": [
                _effect(e) for e in store.effects(status=status, case_id=case_id, limit=limit)
            ]
        }

    @app.post("/effects/{key:path}/retry", response_model=EffectView, tags=["effects"])
    def retry(key: str, who: Who) -> dict[str, Any]:
        """Put a dead-lettered effect back in the outbox."""
        admin(who)
        return _effect(store.retry_dead(key))

    return app
