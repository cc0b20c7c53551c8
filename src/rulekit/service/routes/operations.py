"""Operating the service: ``/health`` and ``/metrics`` (no token needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest

from rulekit.core import __version__
from rulekit.service.dependencies import Served
from rulekit.service.models import Health
from rulekit.service.problems import ErrorDetail
from rulekit.stores import StoreError

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(service: Served) -> Any:
    """The service and its store answer: the store's schema version, a policy and a case
    can be read (a cheap check, not a full one). 503 when they cannot."""
    store = service.store
    try:
        database_time = store.check()
    except StoreError as e:
        down = Health(
            status=e.code,
            store=store.dialect.name,
            version=__version__,
            database_time=None,
            error=ErrorDetail(code=e.code, message=e.message),
        )
        return JSONResponse(down.model_dump(mode="json"), status_code=503)
    return Health(
        status="ok",
        store=store.dialect.name,
        version=__version__,
        database_time=database_time.isoformat(),
    )


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: Served) -> PlainTextResponse:
    """Prometheus metrics (text format)."""
    return PlainTextResponse(
        generate_latest(service.registry).decode("utf-8"),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
