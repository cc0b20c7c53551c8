"""The studio API's request bodies (docs/studio.md; the contract the front end builds on).

Unknown members are refused (``extra="forbid"``): a misspelt member is a 422 that
names it, not a silently ignored choice.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# facts and payloads bounded as the service bounds them (values, nesting, Unicode text)
from rulekit.service.models import Data

Format = Literal["rk", "yaml"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutFile(Body):
    path: str
    text: str
    #: the version the editor loaded; None: create or overwrite without asking
    etag: str | None


class Source(Body):
    """A policy as the editor holds it (``path`` names it in diagnostics and exports)."""

    text: str
    format: Format = "rk"
    path: str = "policy.rk"


class GraphRequest(Source):
    workflow: str | None = None


class OpenSim(Source):
    workflow: str
    facts: Data = Field(default_factory=dict)
    at: str
    by: str | None = None


class Send(Body):
    event: str
    by: str
    payload: Data = Field(default_factory=dict)
    at: str | None = None


class Advance(Body):
    """Exactly one of: to a time, by a duration, to the next deadline."""

    to: str | None = None
    by: str | None = None
    next_deadline: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> Advance:
        given = [self.to is not None, self.by is not None, bool(self.next_deadline)]
        if sum(given) != 1:
            raise ValueError("give exactly one of `to`, `by` or `next_deadline: true`")
        return self


class SaveScenario(Body):
    path: str
    overwrite: bool = False


class RunScenarios(Body):
    paths: list[str]


class Side(Body):
    """One version to compare: a file under the roots, a text, or a file at a git revision."""

    path: str | None = None
    text: str | None = None
    format: Format | None = None
    git: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Side:
        if self.text is not None:
            if self.path is not None and self.git is not None:
                raise ValueError("a text side takes `text` and `format` only")
        elif self.path is None:
            raise ValueError("give `path`, `text` and `format`, or `git` and `path`")
        return self


class DiffRequest(Body):
    old: Side
    new: Side
    workflow: str | None = None


# -- answers ---------------------------------------------------------------------------
# What each route answers (FastAPI checks the answer against them and writes them in
# the OpenAPI document); ``from`` is a keyword in Python, so the members named so have
# an alias.


class PolicyFile(BaseModel):
    path: str
    format: Format


class ScenarioFile(BaseModel):
    path: str
    policy: str | None = Field(description="the policy the file names, under the roots")


class Files(BaseModel):
    roots: list[str]
    policies: list[PolicyFile]
    scenarios: list[ScenarioFile]


class FileText(BaseModel):
    path: str
    text: str
    format: Format
    etag: str = Field(description="the SHA-256 of the file's bytes")


class Written(BaseModel):
    etag: str


class StateInfo(BaseModel):
    name: str
    final: bool
    line: int
    column: int


class WorkflowInfo(BaseModel):
    name: str
    initial: str
    states: list[StateInfo]


class FieldInfo(BaseModel):
    name: str
    type: str
    optional: bool
    enum: list[str] | None


class FactInfo(BaseModel):
    path: str
    type: str
    optional: bool
    enum: list[str] | None
    doc: str | None
    by: list[str]


class EventInfo(BaseModel):
    name: str
    by: list[str]
    payload: list[FieldInfo]


class PolicyInfo(BaseModel):
    name: str
    version: str | None
    hash: str
    zone: str | None
    workflows: list[WorkflowInfo]
    facts: list[FactInfo]
    events: list[EventInfo]
    actors: list[str]


class Checked(BaseModel):
    ok: bool
    diagnostics: list[dict[str, Any]] = Field(
        description="as `rulekit check --format json` lists them, plus `rendered`"
    )
    policy: PolicyInfo | None


class NodeInfo(BaseModel):
    id: str
    state: str
    line: int
    column: int


class EdgeInfo(BaseModel):
    id: str
    from_: str = Field(alias="from")
    to: str
    kind: Literal["event", "deadline", "auto", "soon", "clock"]
    label: str
    line: int
    column: int
    cite: str | None


class Graph(BaseModel):
    dot: str
    nodes: list[NodeInfo]
    edges: list[EdgeInfo]


class RemovedEdge(BaseModel):
    from_: str = Field(alias="from")
    to: str
    label: str


class ComparedGraph(Graph):
    removed_edges: list[RemovedEdge]


class Condition(BaseModel):
    text: str
    value: str
    held: bool


class Entry(BaseModel):
    at: str | None
    kind: str
    text: str
    from_: str | None = Field(alias="from")
    to: str | None
    edge: str | None
    cite: str | None
    conditions: list[Condition]


class Deadline(BaseModel):
    name: str
    due: str
    to: str | None
    edge: str | None


class Allowed(BaseModel):
    event: str
    payload: list[FieldInfo]


class EffectInfo(BaseModel):
    name: str
    args: dict[str, Any]


class Refusal(BaseModel):
    code: str
    message: str


class SimView(BaseModel):
    id: str
    workflow: str
    now: str
    state: str
    final: bool
    facts: dict[str, Any]
    deadlines: list[Deadline]
    allowed: dict[str, list[Allowed]]
    timeline: list[Entry]
    effects: list[EffectInfo]
    refused: Refusal | None


class Exported(BaseModel):
    yaml: str
    filename: str


class Saved(BaseModel):
    path: str
    etag: str


class ScenarioResult(BaseModel):
    file: str
    name: str
    passed: bool
    message: str | None
    timeline: list[Entry]


class Ran(BaseModel):
    passed: int
    failed: int
    results: list[ScenarioResult]


class ChangeInfo(BaseModel):
    kind: str
    breaking: bool
    text: str
    workflow: str | None
    edge: str | None
    state: str | None


class Compared(BaseModel):
    changes: list[ChangeInfo]
    breaking: bool
    graph: ComparedGraph
    added: list[str]
    changed: list[str]
    removed: list[str]
