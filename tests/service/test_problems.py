"""Errors are RFC 9457 problem details: the media type, the members, and the OpenAPI document.

Every error code is exercised by tests/service/test_api.py (each checked by
``error_of`` to be a problem document); here, one request of each class of
error, by what raises it: the ASGI gate, the framework (routing, validation),
a route's own refusal, the store and the engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from rulekit.service.problems import MEDIA_TYPE, PROBLEMS, TYPE_BASE

from .service_support import ROOT, TestClient, auth, error_of, open_case, refund_facts

Request = Any  # a function of the client that sends one request


def _event(c: TestClient, event: str, role: str) -> Any:
    case_id = open_case(c)["id"]
    return c.post(f"/cases/{case_id}/events", json={"event": event}, headers=auth(role))


#: (the class of error, the code, a request that gets it)
CLASSES: list[tuple[str, str, Request]] = [
    ("gate: no token", "unauthorized", lambda c: c.get("/cases")),
    ("gate: NUL in the path", "invalid_request", lambda c: c.get("/a%00", headers=auth("admin"))),
    (
        "gate: body over the limit",
        "payload_too_large",
        lambda c: c.post("/cases", content=b" " * (1 << 20) + b"{}", headers=auth("admin")),
    ),
    ("routing: no route", "not_found", lambda c: c.get("/nowhere", headers=auth("admin"))),
    (
        "routing: no such method",
        "method_not_allowed",
        lambda c: c.put("/cases", headers=auth("admin")),
    ),
    (
        "validation: a body that does not fit",
        "invalid_request",
        lambda c: c.post("/cases", json={"facts": []}, headers=auth("admin")),
    ),
    (
        "validation: not JSON",
        "invalid_request",
        lambda c: c.post(
            "/cases", content=b"{", headers={**auth("admin"), "Content-Type": "application/json"}
        ),
    ),
    (
        "a route's refusal",
        "forbidden",
        lambda c: c.get("/effects", headers=auth("merchant")),
    ),
    (
        "the store: no such case",
        "case_not_found",
        lambda c: c.get("/cases/nope", headers=auth("admin")),
    ),
    (
        "the store: no such workflow",
        "unknown_workflow",
        lambda c: c.post(
            "/cases", json={"workflow": "nope", "facts": refund_facts()}, headers=auth("admin")
        ),
    ),
    ("the engine: a refused step", "actor_not_allowed", lambda c: _event(c, "approve", "consumer")),
    ("the engine: a refused event", "unknown_event", lambda c: _event(c, "pay_me", "consumer")),
]


@pytest.mark.parametrize(("what", "code", "request_"), CLASSES, ids=[c[0] for c in CLASSES])
def test_each_class_of_error_is_a_problem_document(
    client: TestClient, what: str, code: str, request_: Request
) -> None:
    r = request_(client)
    status, title = PROBLEMS[code]
    assert error_of(r) == (status, code), r.text
    assert r.headers["content-type"] == MEDIA_TYPE
    assert r.json()["title"] == title


def test_a_problem_document_in_full(client: TestClient) -> None:
    r = client.get("/cases/order-42", headers=auth("admin"))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "https://rulekit.dev/problems/case_not_found",
        "title": "No such case",
        "status": 404,
        "detail": "no case 'order-42'",
        "code": "case_not_found",
        "error": {"code": "case_not_found", "message": "no case 'order-42'"},
    }


def test_problem_types_are_one_per_code_and_documented() -> None:
    assert len({TYPE_BASE + code for code in PROBLEMS}) == len(PROBLEMS)
    assert all(set(code) <= set("abcdefghijklmnopqrstuvwxyz_") for code in PROBLEMS)  # URI-safe
    guide = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    assert TYPE_BASE in guide
    missing = [code for code in PROBLEMS if f"`{code}`" not in guide]
    assert not missing, f"docs/service.md does not list {missing}"


def test_the_openapi_document_declares_the_problem_responses(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    problem = {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or path == "/health":  # /health's 503 is its report
                    continue
                assert response["content"] == {MEDIA_TYPE: problem}, (method, path, status)
    schema = doc["components"]["schemas"]["ProblemDetails"]
    assert set(schema["required"]) == {"type", "title", "status", "detail", "code", "error"}
    assert schema["properties"]["error"]["deprecated"] is True
    assert "ErrorBody" not in doc["components"]["schemas"]
