"""The HTTP service: cases of compiled policies, run durably for other services.

``rulekit serve rules/x.rk`` serves the policies given on the store given
(SQLite by default), with a deadline worker in the same process;
``rulekit worker`` runs more workers elsewhere. The API is described at
``/openapi.json`` (and browsable at ``/docs``); docs/service.md is the guide.

:func:`create_app` assembles the application from its parts: the routers
(:mod:`.routes`, one per resource), the :class:`.gate.Gate` every request
passes first (authentication before a byte of the body is read, the body limit,
the metrics), and the error handlers (:mod:`.problems`: every error is an RFC
9457 problem document). The routes share the :class:`Service` through
dependencies (:mod:`.dependencies`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from rulekit.core import __version__
from rulekit.service import problems
from rulekit.service.gate import Gate
from rulekit.service.models import LIMITS
from rulekit.service.routes import cases, effects, operations, policies, transfer
from rulekit.service.state import Service

__all__ = ["LIMITS", "Service", "create_app"]


def create_app(service: Service) -> FastAPI:
    """The ASGI application serving ``service``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service.worker is not None:
            service.worker.start()
        relaying: asyncio.Task[None] | None = None
        stop = asyncio.Event()
        if service.relay is not None:
            await service.relay.start()
            relaying = asyncio.create_task(service.relay.run(stop))
        yield
        if relaying is not None and service.relay is not None:
            stop.set()  # deliveries in flight finish, each settled in the outbox
            await relaying
            await service.relay.close()
        if service.worker is not None:
            service.worker.stop()

    app = FastAPI(
        title="rulekit",
        version=__version__,
        description="Cases of compiled rulekit policies: open them, send events, read them, "
        "and carry out the effects they emit. See docs/service.md.",
        lifespan=lifespan,
        responses=problems.RESPONSES,
    )
    app.state.service = service
    # the routes the gate names in the metrics, in the order the app matches them: its own
    # (the OpenAPI document, /docs) first, then each router's
    routes = list(app.router.routes)
    for module in (operations, policies, transfer, cases, effects):
        app.include_router(module.router)
        routes.extend(module.router.routes)
    problems.install(app)
    app.add_middleware(Gate, service=service, routes=routes)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return problems.declare_media_type(generate())  # FastAPI's own, cached by it

    app.openapi = openapi  # type: ignore[method-assign]
    return app
