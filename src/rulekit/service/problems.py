"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the service answers, whatever raised it (the gate, a route, the
engine, the store, the framework's own 404, 405 and validation), is one
document::

    {"type": "https://rulekit.dev/problems/case_not_found",
     "title": "No such case", "status": 404,
     "detail": "no case 'order-42'",
     "code": "case_not_found",
     "error": {"code": "case_not_found", "message": "no case 'order-42'"}}

``code`` is the stable error code (an extension member; the codes are those
the service always had, :data:`PROBLEMS`); ``type`` is a URI made from it,
``https://rulekit.dev/problems/<code>``: absolute, as RFC 9457 recommends (a
relative one resolves against each deployment's own address, so one problem
would have as many types as there are hosts), in the namespace the project's
JSON Schemas already use for their ``$id``, and one per code, so a client may
switch on either. It identifies; clients should not fetch it (docs/service.md
lists the codes). ``error`` is the body the service sent before it spoke RFC
9457, kept so existing clients do not break, and deprecated.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from rulekit.core.errors import EvaluationError, StepRefused
from rulekit.stores import StoreError

MEDIA_TYPE = "application/problem+json"
#: a problem's ``type`` is this followed by its code
TYPE_BASE = "https://rulekit.dev/problems/"

#: each error code: its HTTP status and its title (RFC 9457: the same for every occurrence)
PROBLEMS: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "No valid bearer token"),
    "forbidden": (403, "Not allowed to this caller"),
    "actor_not_allowed": (403, "The caller's actor may not send this event here"),
    "fact_not_allowed": (403, "The caller may not supply this fact"),
    "case_not_found": (404, "No such case"),
    "effect_not_found": (404, "No such effect"),
    "not_found": (404, "No such route"),
    "method_not_allowed": (405, "Method not allowed on this route"),
    "case_exists": (409, "The case exists already"),
    "event_not_allowed": (409, "The event is not accepted in the case's state"),
    "guard_failed": (409, "The event's condition does not hold"),
    "case_closed": (409, "The case is closed"),
    "payload_too_large": (413, "The request body is over the limit"),
    "unknown_event": (422, "No such event in the workflow"),
    "invalid_payload": (422, "The event's payload does not fit the policy"),
    "invalid_fact": (422, "A fact does not fit the policy"),
    "unknown_workflow": (422, "No such workflow"),
    "unknown_policy": (422, "No such policy version"),
    "invalid_request": (422, "The request does not fit the API"),
    "idempotency_key_reused": (422, "The idempotency key was used with another request"),
    "evaluation_error": (422, "A condition or value failed at run time"),
    "internal_error": (500, "The service failed unexpectedly"),
    "commit_unknown": (503, "Whether the step was committed is unknown"),
    "store_unavailable": (503, "The store is unavailable"),
    "store_damaged": (503, "The store's database is damaged"),
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ProblemDetails(BaseModel):
    """An error (RFC 9457), sent as ``application/problem+json``."""

    type: str = Field(
        description=f"the problem type, a URI: {TYPE_BASE}<code>",
        json_schema_extra={"format": "uri"},
    )
    title: str = Field(description="a short summary of the problem type")
    status: int = Field(description="the HTTP status")
    detail: str = Field(description="what went wrong in this request")
    code: str = Field(description="the stable error code (docs/service.md, Errors)")
    error: ErrorDetail = Field(
        deprecated=True,
        description="deprecated, kept for existing clients: the same code, and the detail as "
        "`message`; read `code` and `detail` instead",
    )


class Problem(Exception):
    """An error the service answers with (its code in :data:`PROBLEMS`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def problem(
    code: str, detail: str, headers: Mapping[str, str] | None = None, *, status: int | None = None
) -> Response:
    """The response for error ``code`` (its status from :data:`PROBLEMS`, 400 for a code not
    there, unless ``status`` is given)."""
    known, title = PROBLEMS.get(code, (status or 400, ""))
    status = status or known
    body = ProblemDetails(
        type=TYPE_BASE + code,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code,
        error=ErrorDetail(code=code, message=detail),
    )
    return Response(body.model_dump_json(), status, headers, MEDIA_TYPE)


#: the error responses every operation declares (each a :class:`ProblemDetails`)
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails, "description": description}
    for status, description in (
        (401, "no or unknown bearer token"),
        (403, "the caller may not do this"),
        (404, "no such case, or not one the caller may see"),
        (409, "refused in the case's current state"),
        (413, "the request body is larger than the limit"),
        (422, "invalid input"),
        (503, "the store is unavailable"),
    )
}


def declare_media_type(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with its problem responses under ``application/problem+json``
    (FastAPI puts every declared model under the route's own media type)."""
    ref = f"#/components/schemas/{ProblemDetails.__name__}"
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                for media_type, body in list(content.items()):
                    if body.get("schema", {}).get("$ref") == ref:
                        del content[media_type]
                        content[MEDIA_TYPE] = body
    return document


def install(app: FastAPI) -> None:
    """Answer every error ``app`` meets as a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, e: Problem) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if e.code == "unauthorized" else None
        return problem(e.code, e.message, headers)

    @app.exception_handler(StepRefused)
    async def _refused(request: Request, e: StepRefused) -> Response:
        return problem(e.code, str(e))

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, e: StoreError) -> Response:
        return problem(e.code, e.message)

    @app.exception_handler(EvaluationError)
    async def _evaluation(request: Request, e: EvaluationError) -> Response:
        return problem("evaluation_error", str(e))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> Response:
        # no such route, or not with this method: the same error body as every other error
        if e.status_code == 405:
            return problem("method_not_allowed", f"{request.method} is not allowed here")
        if e.status_code == 404:
            return problem("not_found", f"no route {request.url.path}")
        if e.status_code == 400:  # a body the framework cannot even parse: bad input like any
            return problem("invalid_request", str(e.detail))
        return problem("http_error", str(e.detail), e.headers, status=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem("invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> Response:
        # After this answer the exception goes on to the server, which logs it with its
        # traceback: the caller learns that it happened, never the service's internals.
        return problem("internal_error", "the service failed unexpectedly: its log says why")
