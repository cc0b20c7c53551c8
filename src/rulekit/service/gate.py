"""The gate every request passes before the application sees it (plain ASGI).

It refuses a NUL in the path or the query, authenticates the caller (all but
:data:`OPEN_PATHS`) before a byte of the body is read, reads the body up to the
limit (413 beyond), and counts every request in the metrics.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rulekit.service.auth import Caller, Tokens
from rulekit.service.problems import problem
from rulekit.service.state import Service

#: what needs no token: the health check, the metrics and the API's description
OPEN_PATHS = frozenset({"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
#: the methods metrics name; any other counts as ``other`` (a label set of fixed size)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: where :class:`Gate` leaves the caller it authenticated, in the request's scope
CALLER = "rulekit.caller"


def authenticate(tokens: Tokens, authorization: str | None) -> Caller | Response:
    """The caller a bearer token names, or the 401 that says what is wrong."""
    if authorization is None or not authorization.lower().startswith("bearer "):
        message = "send a bearer token: Authorization: Bearer <token>"
    else:
        found = tokens.caller(authorization[7:].strip())
        if found is not None:
            return found
        message = "unknown bearer token"
    return problem("unauthorized", message, {"WWW-Authenticate": "Bearer"})


class Gate:
    """Before the application sees a request: a NUL in the path or query is refused, the
    caller is authenticated (all but :data:`OPEN_PATHS`), and the body is read, up to
    ``max_body`` bytes (413 beyond, read no further: a declared length is refused before
    any of it is read). Every request is counted in the metrics, with labels from fixed
    sets: the route's template (or ``unmatched``), the method (or ``other``), the status."""

    def __init__(self, app: ASGIApp, service: Service, routes: list[BaseRoute]) -> None:
        self.app = app
        self.service = service
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, counted)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.service.requests.labels(self._route(scope), method, str(status)).inc()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if "\x00" in scope["path"] or any(
            "\x00" in k + v for k, v in request.query_params.multi_items()
        ):
            # the database could not compare it with anything (PostgreSQL's text holds no NUL)
            refusal = problem("invalid_request", "a NUL character in the path or the query")
            await refusal(scope, receive, send)
            return
        if scope["path"] not in OPEN_PATHS:
            caller = authenticate(self.service.tokens, request.headers.get("authorization"))
            if isinstance(caller, Response):
                await caller(scope, receive, send)
                return
            scope[CALLER] = caller
        body = await self._body(request, receive)
        if body is None:
            too_large = problem(
                "payload_too_large",
                f"the request body is larger than {self.service.max_body} bytes",
                {"Connection": "close"},
            )
            await too_large(scope, receive, send)
            return
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _body(self, request: Request, receive: Receive) -> bytes | None:
        return await read_body(
            receive, request.headers.get("content-length", ""), self.service.max_body
        )

    def _route(self, scope: Scope) -> str:
        """The template of the route the request went to (or would have: it may have been
        refused before routing), for the metrics."""
        routed = scope.get("route")  # where the router left the route it chose
        if routed is not None:
            return str(getattr(routed, "path", "unmatched"))
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return str(getattr(route, "path", "unmatched"))
        return "unmatched"


async def read_body(receive: Receive, declared: str, limit: int) -> bytes | None:
    """The whole body, or None when it is longer than ``limit`` bytes (read no further: a
    declared length, the Content-Length header's text, is refused before any of it is read)."""
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nothing more comes
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
