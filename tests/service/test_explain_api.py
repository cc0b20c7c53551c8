"""``GET /cases/{id}/explain``: why a case is where it is, over HTTP.

The same JSON as ``rulekit explain --format json`` (docs/runtime.md, "Explaining a
case"), under the authorization of reading the case (the matrix in
test_authorization.py), with rules named by file name, never the server's folders.
"""

from __future__ import annotations

from .service_support import PARTIES_A, TestClient, auth, error_of, refund_facts


def _refunded(c: TestClient) -> None:
    r = c.post(
        "/cases",
        json={
            "workflow": "refund_only",
            "facts": refund_facts(),
            "parties": PARTIES_A,
            "id": "x-1",
        },
        headers=auth("admin"),
    )
    assert r.status_code == 201, r.text
    for event, role, data in (
        ("reject", "merchant", {"reason": "no proof"}),
        ("reapply", "consumer", None),
        ("approve", "merchant", None),
    ):
        body = {"event": event, **({"data": data} if data else {})}
        r = c.post("/cases/x-1/events", json=body, headers=auth(role))
        assert r.status_code == 200, r.text


def test_why_a_case_was_refunded(any_client: TestClient) -> None:
    _refunded(any_client)
    r = any_client.get(
        "/cases/x-1/explain", params={"why": "effect:refund"}, headers=auth("consumer")
    )
    assert r.status_code == 200, r.text
    view = r.json()
    assert (view["state"], view["found"], view["question"]) == ("refunded", True, "effect:refund")
    assert view["answer"].startswith(
        'refund(amount: 500) was emitted because of clause "1. the merchant approves"'
    )
    # the approval, the reapplication that led back to the merchant, the rejection before it
    assert [s["event"] for s in view["steps"]] == [None, "reject", "reapply", "approve"]
    assert all(s["rule"].startswith("kuaishou_after_sales.rk:") for s in view["steps"][1:])
    state = any_client.get("/cases/x-1/explain", headers=auth("merchant")).json()
    assert state["question"] == "state" and state["steps"][-1]["why"] == ["entered `refunded`"]
    every = any_client.get("/cases/x-1/explain", params={"all": "true"}, headers=auth("admin"))
    assert every.json()["left_out"] == 0


def test_questions_it_cannot_answer(client: TestClient) -> None:
    _refunded(client)
    for why in ("refusal", "effect:nothing", "whatever"):
        r = client.get("/cases/x-1/explain", params={"why": why}, headers=auth("admin"))
        assert error_of(r) == (422, "invalid_request"), why
    r = client.get("/cases/x-1/explain", params={"why": "effect:refund"}, headers=auth("admin"))
    assert r.json()["found"] is True
    r = client.get("/cases/nope/explain", headers=auth("admin"))
    assert error_of(r) == (404, "case_not_found")
