"""The studio API's request bodies (docs/studio.md; the contract the front end builds on).

Unknown members are refused (``extra="forbid"``): a misspelt member is a 422 that
names it, not a silently ignored choice.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    facts: dict[str, Any] = Field(default_factory=dict)
    at: str
    by: str | None = None


class Send(Body):
    event: str
    by: str
    payload: dict[str, Any] = Field(default_factory=dict)
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
