"""``/policies``: the policy versions the store keeps."""

from __future__ import annotations

from fastapi import APIRouter, Response

from rulekit.service.dependencies import Served, Who
from rulekit.service.models import PolicyList, PolicyView, rendered

router = APIRouter(tags=["policies"])


@router.get("/policies", response_model=PolicyList)
def policies(service: Served, who: Who) -> Response:
    """Policy versions in the store; new cases pin to the current one of each name.
    How many cases are open on each: to admins only (others get null)."""
    listed = [PolicyView.of(p, counts=who.admin) for p in service.store.policies()]
    return rendered(PolicyList(policies=listed))
