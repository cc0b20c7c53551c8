"""What every request passes before the studio's routes see it (plain ASGI).

The studio reads and writes files, so a page from another site must not reach it:
the Host header must be the address the studio is bound to (a DNS-rebinding page
arrives with its own name), every ``/api/`` call must carry the token that only the
studio's own page holds, and a body is read up to :data:`MAX_BODY` bytes, no more.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rulekit.service.gate import read_body
from rulekit.service.problems import problem

#: the largest request body read, in bytes (a policy or a scenario file is far smaller)
MAX_BODY = 2 * 1024 * 1024
TOKEN_HEADER = "x-rulekit-studio-token"


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host headers accepted: the bound address, or localhost / 127.0.0.1, with the port."""
    names = {host, "localhost", "127.0.0.1"}
    if ":" in host:  # an IPv6 address is written in brackets in a Host header
        names.add(f"[{host}]")
    return frozenset(f"{name}:{port}" for name in names)


class Gate:
    """Refuses (403) a request for another host and an ``/api/`` call without the token,
    and (413) a body over :data:`MAX_BODY`, before the application sees it."""

    def __init__(self, app: ASGIApp, token: str, hosts: frozenset[str]) -> None:
        self.app = app
        self.token = token
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.headers.get("host", "").lower() not in self.hosts:
            await problem(
                "forbidden_host",
                "this studio answers only requests for its own address "
                f"({', '.join(sorted(self.hosts))})",
                status=403,
            )(scope, receive, send)
            return
        if scope["path"].startswith("/api/") and not hmac.compare_digest(
            request.headers.get(TOKEN_HEADER, "").encode(), self.token.encode()
        ):
            await problem(
                "bad_token",
                "send the studio page's token in the X-Rulekit-Studio-Token header",
                status=403,
            )(scope, receive, send)
            return
        body = await read_body(receive, request.headers.get("content-length", ""), MAX_BODY)
        if body is None:
            await problem(
                "payload_too_large",
                f"the request body is larger than {MAX_BODY} bytes",
                {"Connection": "close"},
            )(scope, receive, send)
            return
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)
