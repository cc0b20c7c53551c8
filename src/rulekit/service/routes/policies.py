"""``/policies``: the policy versions the store keeps."""

from __future__ import annotations

from fastapi import APIRouter

from rulekit.service.dependencies import Served, Who
from rulekit.service.models import PolicyList, PolicyView

router = APIRouter(tags=["policies"])


@router.get("/policies", response_model=PolicyList)
def policies(service: Served, who: Who) -> PolicyList:
    """Policy versions in the store; new cases pin to the current one of each name.
    How many cases are open on each: to admins only (others get null)."""
    return PolicyList(
        policies=[PolicyView.of(p, counts=who.admin) for p in service.store.policies()]
    )
