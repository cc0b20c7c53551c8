"""Live rule changes over HTTP (admins only): ``POST /policies/impact`` (what a stored
version would do to the open cases of another), ``GET /cases/export`` and ``POST
/cases/import`` (cases and their histories as JSON Lines). The same work as ``rulekit
impact``, ``rulekit export`` and ``rulekit import``; docs/live-changes.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from rulekit.core.errors import RuleError
from rulekit.runtime import impact
from rulekit.service.dependencies import Served, Who, require_admin
from rulekit.service.models import TEXT_PATTERN, AssessImpact, ImportReport, rendered
from rulekit.service.problems import Problem
from rulekit.stores import export
from rulekit.stores.live_migration import version_hash

router = APIRouter(tags=["live changes"])


@router.post("/policies/impact")
def assess_impact(body: AssessImpact, service: Served, who: Who) -> Response:
    """What version ``new`` would do to the open cases pinned to version ``old`` (both
    registered in the store): each case's history replayed under both, compared as
    ``rulekit impact`` does; the report is its JSON (``rulekit-impact/1``)."""
    require_admin(who)
    store = service.store
    old_hash = version_hash(store, body.old, body.policy)
    new_hash = version_hash(store, body.new, body.policy)
    old, new = store.engine(old_hash).policy, store.engine(new_hash).policy
    now = body.at or datetime.now(UTC)
    found = ((c.id, list(c.history)) for c in export.cases(store, open_only=True, version=old_hash))
    try:
        report = impact.run(old, new, impact.sample(found, body.sample, body.seed), now)
    except RuleError as e:
        raise Problem("invalid_request", str(e)) from None
    return Response(impact.dumps(report), media_type="application/json")


#: JSON Lines, as the OpenAPI document declares it (the export's format is
#: src/rulekit/schemas/export.schema.json, a line at a time)
_NDJSON = {"application/x-ndjson": {"schema": {"type": "string"}}}


@router.get(
    "/cases/export",
    response_class=StreamingResponse,
    responses={200: {"description": "the export, a JSON document a line", "content": _NDJSON}},
)
def export_cases(
    service: Served,
    who: Who,
    open_only: bool = Query(default=False, description="only cases not in a final state"),
    policy: str | None = Query(default=None, max_length=200, pattern=TEXT_PATTERN),
) -> Response:
    """Cases with their histories as JSON Lines (``rulekit-export/1``: a header line with
    the policy versions, then a case a line), streamed a page of cases at a time."""
    require_admin(who)
    store = service.store

    def lines() -> Iterator[str]:
        head: dict[str, Any] = export.header(store, policy)
        yield export.json_line(head)
        for case in export.cases(store, open_only=open_only, policy=policy):
            yield export.line(case) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post(
    "/cases/import",
    response_model=ImportReport,
    openapi_extra={"requestBody": {"required": True, "content": _NDJSON}},
)
async def import_cases(request: Request, service: Served, who: Who) -> Response:
    """Cases from an export (JSON Lines, within the service's body limit), each in a
    transaction of its own; a case already here with the same history is skipped."""
    require_admin(who)
    body = await request.body()
    try:
        written, skipped = export.import_file(service.store, body.splitlines())
    except export.ImportProblem as e:
        raise Problem("invalid_request", f"line {e.line}: {e.message}") from None
    return rendered(ImportReport(imported=written, skipped=skipped))
