"""``/effects``: the outbox, for the integration (admins only): claim effects, acknowledge
them, report failures, read the dead letters and put them back."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from rulekit.service.dependencies import Served, Who, require_admin
from rulekit.service.models import ClaimEffects, EffectList, EffectView, FailEffect, rendered

router = APIRouter(tags=["effects"])


@router.post("/effects/claim", response_model=EffectList)
def claim(body: ClaimEffects, service: Served, who: Who) -> Response:
    """Claim effects to carry out; acknowledge each within its lease, or it is delivered again."""
    require_admin(who)
    found = service.store.claim(limit=body.limit, lease=timedelta(seconds=body.lease_seconds))
    return rendered(EffectList(effects=[EffectView.of(e) for e in found]))


@router.post("/effects/{key:path}/ack", response_model=EffectView)
def ack(key: str, service: Served, who: Who) -> Response:
    """The effect was carried out (acknowledging twice is harmless)."""
    require_admin(who)
    return rendered(EffectView.of(service.store.ack(key)))


@router.post("/effects/{key:path}/fail", response_model=EffectView)
def fail(key: str, body: FailEffect, service: Served, who: Who) -> Response:
    """Carrying out the effect failed: retried later, dead-lettered after too many tries."""
    require_admin(who)
    retry_in = timedelta(seconds=body.retry_in_seconds)
    failed = service.store.fail(
        key, body.error, retry_in=retry_in, dead=body.dead, attempt=body.attempt
    )
    return rendered(EffectView.of(failed))


@router.get("/effects", response_model=EffectList)
def list_effects(
    service: Served,
    who: Who,
    status: Annotated[str | None, Query(pattern="^(pending|done|dead)$")] = None,
    case_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Effects in the outbox (the dead letters: status=dead)."""
    require_admin(who)
    found = service.store.effects(status=status, case_id=case_id, limit=limit)
    return rendered(EffectList(effects=[EffectView.of(e) for e in found]))


@router.post("/effects/{key:path}/retry", response_model=EffectView)
def retry(key: str, service: Served, who: Who) -> Response:
    """Put a dead-lettered effect back in the outbox."""
    require_admin(who)
    return rendered(EffectView.of(service.store.retry_dead(key)))
