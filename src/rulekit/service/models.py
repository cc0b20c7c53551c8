"""The bodies of requests and responses: one pydantic model per shape.

Requests are validated against their models (and bounded by :data:`LIMITS`);
responses are built by each view's ``of`` from what the store returns
(:class:`StoredCase`, :class:`StepResult`, :class:`Record`,
:class:`OutboxEffect`), so a shape is written once, here, and the OpenAPI
document describes exactly what is sent. Errors are in :mod:`.problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import Response

from rulekit.expr.convert import to_data
from rulekit.runtime.model import Record, StepResult
from rulekit.runtime.timeline import record_data
from rulekit.service.problems import ErrorDetail
from rulekit.stores import OutboxEffect, StoredCase

#: the bounds of a request (docs/service.md, "Limits"); ``max_body`` is the default of
#: ``rulekit serve --max-body`` (and of :class:`rulekit.service.state.Service`'s ``max_body``)
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


# -- requests ----------------------------------------------------------------------------------
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
    dead: bool = Field(default=False, description="refused for good: to the dead letters now")
    attempt: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="the claim's attempts: a report on an older claim changes nothing",
    )


# -- responses ---------------------------------------------------------------------------------
def _time(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


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

    @classmethod
    def of(cls, r: Record) -> RecordView:
        """A history record as the API shows it (the runtime's JSON form of a record), its
        rule named by the policy file's name and line (``kuaishou_after_sales.rk:113:5``),
        never by the server's folders."""
        data = record_data(r)
        data["rule"] = shown_rule(r.rule)
        return cls(**data)


def shown_rule(rule: str | None) -> str | None:
    """Where a rule was written as the API shows it: the policy file's name and line
    (``kuaishou_after_sales.rk:113:5``), never the server's folders."""
    if not rule:
        return rule
    path, _, where = rule.rpartition(":")
    path, _, line = path.rpartition(":")
    name = path.replace("\\", "/").rsplit("/", 1)[-1]  # a POSIX or a Windows path
    return f"{name}:{line}:{where}" if path else rule


class ClauseView(BaseModel):
    """A clause of a condition with the values it saw (docs/runtime.md, "Explaining a case")."""

    text: str
    value: Any
    error: str | None
    reads: dict[str, Any] = Field(description="the facts and payload fields it read")
    operands: list[list[Any]] = Field(description="a comparison's two sides: [text, value]")
    line: int
    column: int
    parts: list[ClauseView] = Field(description="the clauses of a named condition it names")


class ConditionView(BaseModel):
    text: str
    value: Any
    error: str | None
    clauses: list[ClauseView]


class ExplainedRecord(BaseModel):
    """A record of the causal chain, with why it is there."""

    seq: int
    at: str
    kind: str
    source: str | None
    target: str | None
    event: str | None
    actor: str | None
    data: dict[str, Any] | None
    why: list[str]
    facts: dict[str, Any] = Field(description="facts it set that a later record read")
    deadline: str | None
    condition: ConditionView | None
    cite: str | None
    assumption: str | None
    sets: dict[str, Any]
    effects: list[dict[str, Any]]
    rule: str | None


class ExplanationView(BaseModel):
    """Why a case is where it is: the same JSON as ``rulekit explain --format json``."""

    question: str
    workflow: str
    state: str
    final: bool
    outcome: str | None
    found: bool = Field(description="whether what was asked about happened")
    answer: str
    refusal: dict[str, Any] | None = Field(description="always null: a store keeps no refusals")
    refused: list[dict[str, Any]]
    steps: list[ExplainedRecord]
    left_out: int = Field(description="records of the history not shown")

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ExplanationView:
        """From :func:`rulekit.runtime.explain.explanation_data`."""
        return cls.model_validate(data)


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
    policy: str | None = Field(description="the policy version that emitted it")

    @classmethod
    def of(cls, e: OutboxEffect) -> EffectView:
        return cls(**e.to_data())


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

    @classmethod
    def of(
        cls,
        c: StoredCase,
        allowed: Mapping[str, tuple[str, ...]] | None = None,
        history: list[Record] | None = None,
    ) -> CaseView:
        """The case; with ``allowed`` and ``history`` when the caller reads it alone."""
        return cls(
            id=c.id,
            policy=c.policy,
            workflow=c.workflow,
            state=c.state,
            final=c.final,
            outcome=c.outcome,
            facts=to_data(dict(c.facts)),
            next_deadline=_time(c.next_deadline),
            version=c.version,
            parties=dict(c.parties),
            opened_at=c.opened_at.isoformat(),
            updated_at=c.updated_at.isoformat(),
            allowed={k: list(v) for k, v in allowed.items()} if allowed is not None else None,
            history=[RecordView.of(r) for r in history] if history is not None else None,
        )


class StepView(BaseModel):
    state: str
    final: bool
    repeated: bool = Field(description="true when the idempotency key was seen before")
    records: list[RecordView]
    effects: list[dict[str, Any]]
    case: CaseView

    @classmethod
    def of(cls, result: StepResult, case: StoredCase) -> StepView:
        """What a step did, and the case as it left it."""
        return cls(
            state=result.state,
            final=result.final,
            repeated=result.repeated,
            records=[RecordView.of(r) for r in result.records],
            effects=[{"name": e.name, "args": to_data(dict(e.args))} for e in result.effects],
            case=CaseView.of(case),
        )


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

    @classmethod
    def of(cls, p: Mapping[str, Any], *, counts: bool) -> PolicyView:
        """A policy version as :meth:`rulekit.Store.policies` lists it; how many cases are
        open on it only when ``counts`` (for admins)."""
        return cls(
            hash=p["hash"],
            name=p["name"],
            version=p["version"],
            registered_at=p["registered_at"].isoformat(),
            open_cases=p["open_cases"] if counts else None,
            current=p["current"],
        )


class PolicyList(BaseModel):
    policies: list[PolicyView]


class MigrateCases(BaseModel):
    """``POST /policies/migrate``: move open cases to a later version (``rulekit migrate``)."""

    to: str = Field(max_length=200, pattern=TEXT_PATTERN, description="the version to move to")
    policy: str | None = Field(
        default=None, max_length=200, pattern=TEXT_PATTERN, description="its policy's name"
    )
    workflow: str | None = Field(default=None, max_length=200, pattern=TEXT_PATTERN)
    where: str | None = Field(
        default=None,
        max_length=2000,
        pattern=TEXT_PATTERN,
        description="a state's name, or a condition over the case's facts",
    )
    batch: int = Field(default=100, ge=1, le=1000)
    dry_run: bool = False


class MovedCase(BaseModel):
    case: str
    from_state: str
    to_state: str


class RefusedCase(BaseModel):
    case: str
    why: str


class AssessImpact(BaseModel):
    """``POST /policies/impact``: what version ``new`` would do to the open cases of
    version ``old`` (``rulekit impact``; both versions registered in the store)."""

    old: str = Field(max_length=200, pattern=TEXT_PATTERN, description="the cases' version")
    new: str = Field(max_length=200, pattern=TEXT_PATTERN, description="the version to assess")
    policy: str | None = Field(
        default=None, max_length=200, pattern=TEXT_PATTERN, description="their policy's name"
    )
    at: datetime | None = Field(default=None, description="judge the cases at (default: now)")
    sample: int | None = Field(default=None, ge=1, le=1_000_000, description="assess N cases")
    seed: int = Field(default=0, ge=0, le=2**31, description="which N (the same every time)")


class ImportReport(BaseModel):
    imported: int = Field(description="cases written")
    skipped: int = Field(description="cases already in the store with the same history")


class MigrationReport(BaseModel):
    to: str
    dry_run: bool
    moved: list[MovedCase]
    skipped: int = Field(description="open cases already on the version")
    refused: list[RefusedCase]


def rendered(view: BaseModel, status_code: int = 200) -> Response:
    """``view`` as the response, serialized once, by pydantic's own JSON encoder.

    A route that returns a model instead has FastAPI validate it against the route's
    ``response_model`` again, and for a sync route in another trip through the thread
    pool, before it serializes it: a second pass over what the view's constructor has
    just validated. Routes still declare ``response_model``, so the OpenAPI document is
    the same."""
    return Response(view.model_dump_json(), status_code, media_type="application/json")


class Health(BaseModel):
    status: str = Field(description="ok, or the store's error code (503)")
    store: str
    version: str
    database_time: str | None
    error: ErrorDetail | None = None
