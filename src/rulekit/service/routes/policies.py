"""``/policies``: the policy versions the store keeps."""

from __future__ import annotations

from fastapi import APIRouter, Response

from rulekit.service.dependencies import Served, Who, require_admin
from rulekit.service.models import (
    MigrateCases,
    MigrationReport,
    MovedCase,
    PolicyList,
    PolicyView,
    RefusedCase,
    rendered,
)
from rulekit.service.problems import Problem
from rulekit.stores.live_migration import InvalidFilter, migrate, version_hash

router = APIRouter(tags=["policies"])


@router.get("/policies", response_model=PolicyList)
def policies(service: Served, who: Who) -> Response:
    """Policy versions in the store; new cases pin to the current one of each name.
    How many cases are open on each: to admins only (others get null)."""
    listed = [PolicyView.of(p, counts=who.admin) for p in service.store.policies()]
    return rendered(PolicyList(policies=listed))


@router.post("/policies/migrate", response_model=MigrationReport)
def migrate_cases(body: MigrateCases, service: Served, who: Who) -> Response:
    """Move open cases to a later version, as its `migrate from` block says (admins only):
    each case in a transaction of its own, with a `migrated` record; cases already on the
    version are skipped, so asking again resumes a migration that stopped."""
    require_admin(who)
    store = service.store
    try:
        done = migrate(
            store,
            version_hash(store, body.to, body.policy),
            workflow=body.workflow,
            where=body.where,
            batch=body.batch,
            dry_run=body.dry_run,
        )
    except InvalidFilter as e:
        raise Problem("invalid_request", str(e)) from None
    return rendered(
        MigrationReport(
            to=body.to,
            dry_run=body.dry_run,
            moved=[MovedCase(case=c, from_state=a, to_state=b) for c, a, b in done.moved],
            skipped=done.skipped,
            refused=[RefusedCase(case=c, why=w) for c, w in done.refused],
        )
    )
