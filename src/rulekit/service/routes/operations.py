"""Operating the service: ``/health`` and ``/metrics`` (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import generate_latest

from rulekit.core import __version__
from rulekit.service.dependencies import Served
from rulekit.service.models import Health, rendered
from rulekit.service.problems import ErrorDetail
from rulekit.stores import StoreError

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(service: Served) -> Response:
    """The service and its store answer: the store's schema version, a policy and a case
    can be read (a cheap check, not a full one). 503 when they cannot."""
    store, version = service.store, __version__
    try:
        database_time = store.check()
    except StoreError as e:
        error = ErrorDetail(code=e.code, message=e.message)
        down = Health(
            status=e.code,
            store=store.dialect.name,
            version=version,
            database_time=None,
            error=error,
        )
        return rendered(down, 503)
    up = Health(
        status="ok",
        store=store.dialect.name,
        version=version,
        database_time=database_time.isoformat(),
    )
    return rendered(up)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: Served) -> PlainTextResponse:
    """Prometheus metrics (text format)."""
    return PlainTextResponse(
        generate_latest(service.registry).decode("utf-8"),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
