"""What routes are given (FastAPI dependencies): the :class:`Service` and the caller.

Both are ``async``: they only read what the application and the gate left in
the request, so they run on the event loop, never through the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rulekit.service.auth import Caller
from rulekit.service.gate import CALLER
from rulekit.service.problems import Problem
from rulekit.service.state import Service

#: the bearer scheme, for the OpenAPI document (authentication itself is the gate's)
BEARER = HTTPBearer(scheme_name="bearer", auto_error=False)


async def service(request: Request) -> Service:
    """The application's :class:`Service` (``create_app`` keeps it in ``app.state``)."""
    found: Service = request.app.state.service
    return found


async def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> Caller:
    """The caller the gate authenticated (``bearer`` declares the scheme in OpenAPI)."""
    found = request.scope.get(CALLER)
    if not isinstance(found, Caller):  # an app without its gate: nobody is let in
        raise Problem("unauthorized", "send a bearer token: Authorization: Bearer <token>")
    return found


def require_admin(who: Caller) -> None:
    """Refuse a caller that is not an admin (403 forbidden)."""
    if not who.admin:
        raise Problem("forbidden", "only an admin token may do this")


Who = Annotated[Caller, Depends(caller)]
Served = Annotated[Service, Depends(service)]
