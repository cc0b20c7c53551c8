"""The HTTP API over a real store: happy paths, every error code, idempotency, OpenAPI, metrics.

SQLite in tmp_path throughout; the tests taking ``any_client`` run on
PostgreSQL too (when RULEKIT_TEST_POSTGRES_DSN is set).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rulekit import __version__
from rulekit import policy as policies
from rulekit.core.errors import EvaluationError
from rulekit.policy import Policy
from rulekit.service.app import Service, create_app
from rulekit.service.auth import Tokens
from rulekit.service.problems import PROBLEMS
from rulekit.stores import SqlStore, open_store
from rulekit.stores.base import CommitUnknown

from .service_support import (
    METRICS,
    PARTIES_A,
    PARTIES_B,
    POLICY_FILE,
    TestClient,
    auth,
    error_of,
    make_client,
    open_case,
    refund_facts,
)


def send(client: TestClient, case_id: str, event: str, role: str, **kw: Any) -> Any:
    headers = {**auth(role), **kw.pop("headers", {})}
    return client.post(f"/cases/{case_id}/events", json={"event": event, **kw}, headers=headers)


# -- happy paths ---------------------------------------------------------------------------------
def test_health_needs_no_token(any_client: TestClient, any_store: SqlStore) -> None:
    r = any_client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["store"] == any_store.dialect.name
    assert body["version"] == __version__
    assert datetime.fromisoformat(body["database_time"]).tzinfo is not None


def test_policies_lists_the_served_version(any_client: TestClient, kuaishou: Policy) -> None:
    open_case(any_client)
    r = any_client.get("/policies", headers=auth("consumer"))
    assert r.status_code == 200
    [p] = r.json()["policies"]
    assert p["name"] == "kuaishou.after_sales"
    assert p["version"] == "2023-01-31"
    assert p["hash"] == kuaishou.hash
    assert p["current"] is True
    assert p["open_cases"] is None  # how busy each version is: for admins only
    assert datetime.fromisoformat(p["registered_at"])
    [p] = any_client.get("/policies", headers=auth("admin")).json()["policies"]
    assert p["open_cases"] == 1


def test_admins_migrate_cases_to_a_version_the_store_has(any_client: TestClient) -> None:
    """The endpoint runs what `rulekit migrate` runs (tested on both stores in
    tests/stores/test_migrate_store.py): here, what it answers."""
    open_case(any_client)
    body = {"to": "2023-01-31", "dry_run": True}
    r = any_client.post("/policies/migrate", json=body, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "to": "2023-01-31",
        "dry_run": True,
        "moved": [],
        "skipped": 1,
        "refused": [],
    }
    r = any_client.post("/policies/migrate", json={"to": "1999"}, headers=auth("admin"))
    assert (r.status_code, r.json()["code"]) == (422, "unknown_policy")
    r = any_client.post("/policies/migrate", json=body, headers=auth("consumer"))
    assert r.status_code == 403


def test_admins_assess_export_and_import_cases(any_client: TestClient) -> None:
    """The endpoints run what `rulekit impact`, `export` and `import` run (tested on both
    stores in tests/test_impact.py and tests/stores/test_export.py): here, what they answer."""
    case_id = open_case(any_client)["id"]
    same = {"old": "2023-01-31", "new": "2023-01-31"}
    r = any_client.post("/policies/impact", json=same, headers=auth("admin"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["format"], report["assessed"], report["changed"]) == ("rulekit-impact/1", 1, 0)
    r = any_client.post("/policies/impact", json={**same, "new": "1999"}, headers=auth("admin"))
    assert (r.status_code, r.json()["code"]) == (422, "unknown_policy")
    r = any_client.get("/cases/export", headers=auth("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    head, *lines = r.text.splitlines()
    assert json.loads(head)["format"] == "rulekit-export/1"
    assert [json.loads(line)["id"] for line in lines] == [case_id]
    # the same cases again: each already here with the same history
    r = any_client.post("/cases/import", content=r.content, headers=auth("admin"))
    assert (r.status_code, r.json()) == (200, {"imported": 0, "skipped": 1})
    broken = head + "\n" + "{not json\n"
    r = any_client.post("/cases/import", content=broken.encode(), headers=auth("admin"))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    assert "line 2" in r.json()["detail"]


def test_a_case_from_opening_to_its_refund(any_client: TestClient) -> None:
    c = any_client
    r = c.post(
        "/cases",
        json={
            "workflow": "refund_only",
            "facts": refund_facts(),
            "parties": PARTIES_A,
            "id": "c-1",
        },
        headers=auth("admin"),
    )
    assert r.status_code == 201, r.text
    opened = r.json()
    assert (opened["state"], opened["final"], opened["repeated"]) == (
        "awaiting_merchant",
        False,
        False,
    )
    assert [rec["kind"] for rec in opened["records"]] == ["open"]
    case = opened["case"]
    assert case["id"] == "c-1"
    assert case["parties"] == PARTIES_A
    assert case["version"] == 1
    assert case["next_deadline"] is not None  # the merchant's 48h

    r = send(c, "c-1", "reject", "merchant", data={"reason": "no proof"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "merchant_rejected"
    assert r.json()["records"][0]["actor"] == "merchant"
    assert send(c, "c-1", "reapply", "consumer").json()["state"] == "awaiting_merchant"
    r = send(c, "c-1", "approve", "merchant")
    step = r.json()
    assert (step["state"], step["final"]) == ("refunded", True)
    assert step["effects"] == [{"name": "refund", "args": {"amount": "500"}}]
    assert step["case"]["outcome"] == "refunded"

    r = c.get("/cases/c-1", headers=auth("merchant"))
    assert r.status_code == 200
    view = r.json()
    assert (view["state"], view["final"], view["outcome"]) == ("refunded", True, "refunded")
    assert view["allowed"] == {}
    assert view["next_deadline"] is None
    assert view["version"] == 4
    assert [h["kind"] for h in view["history"]] == ["open", "event", "event", "event"]
    assert [h["event"] for h in view["history"][1:]] == ["reject", "reapply", "approve"]
    assert view["facts"]["rejection"]["reason"] == "no proof"

    # a page of history has the shape of a page of cases: its items and the next `after`
    r = c.get("/cases/c-1/history", params={"after": 0, "limit": 2}, headers=auth("consumer"))
    assert [h["seq"] for h in r.json()["records"]] == [1, 2]
    assert r.json()["next"] == 2
    r = c.get("/cases/c-1/history", params={"after": 2, "limit": 2}, headers=auth("consumer"))
    assert ([h["seq"] for h in r.json()["records"]], r.json()["next"]) == ([3], None)
    whole = c.get("/cases/c-1/history", headers=auth("admin")).json()
    assert ([h["seq"] for h in whole["records"]], whole["next"]) == ([0, 1, 2, 3], None)
    # rules are named by the policy file and line, not by the server's folders
    assert all(h["rule"].startswith("kuaishou_after_sales.rk:") for h in whole["records"][1:]), (
        whole["records"]
    )


def test_read_says_what_the_case_accepts_now(client: TestClient) -> None:
    case = open_case(client)
    allowed = client.get(f"/cases/{case['id']}", headers=auth("admin")).json()["allowed"]
    assert allowed["approve"] == ["merchant"]
    assert sorted(allowed["escalate"]) == ["consumer", "merchant"]
    assert allowed["withdraw"] == ["consumer"]


def test_list_cases_filters_and_pages(any_client: TestClient) -> None:
    c = any_client
    for i in range(5):
        open_case(c, PARTIES_A if i % 2 == 0 else PARTIES_B, id=f"case-{i}")
    send(c, "case-0", "approve", "merchant")
    r = c.get("/cases", params={"limit": 2}, headers=auth("admin"))
    page = r.json()
    assert [x["id"] for x in page["cases"]] == ["case-0", "case-1"]
    assert page["next"] == "case-1"
    page = c.get("/cases", params={"limit": 2, "after": "case-3"}, headers=auth("admin")).json()
    assert [x["id"] for x in page["cases"]] == ["case-4"]
    assert page["next"] is None
    r = c.get("/cases", params={"state": "refunded"}, headers=auth("admin"))
    assert [x["id"] for x in r.json()["cases"]] == ["case-0"]
    r = c.get("/cases", params={"workflow": "return_refund"}, headers=auth("admin"))
    assert r.json() == {"cases": [], "next": None}
    # a principal lists only its own cases
    mine = c.get("/cases", headers=auth("consumer")).json()["cases"]
    assert [x["id"] for x in mine] == ["case-0", "case-2", "case-4"]
    assert [x["id"] for x in c.get("/cases", headers=auth("platform")).json()["cases"]] == [
        f"case-{i}" for i in range(5)
    ]


def test_update_facts(any_client: TestClient) -> None:
    case = open_case(any_client)
    r = any_client.post(
        f"/cases/{case['id']}/facts",
        json={"facts": {"order.amount": 120.5}},
        headers=auth("admin"),
    )
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["state"] == "awaiting_merchant"  # shipped: no fast refund
    assert [rec["kind"] for rec in step["records"]] == ["update"]
    assert step["case"]["facts"]["order"]["amount"] == "120.5"


def test_the_outbox_claim_ack_fail_and_dead_letters(
    any_client: TestClient, any_store: SqlStore
) -> None:
    c, admin = any_client, auth("admin")
    any_store.max_attempts = 2  # this store only: dead after two deliveries
    case = open_case(c)
    send(c, case["id"], "approve", "merchant")
    key = f"{case['id']}/1/0"

    r = c.post("/effects/claim", json={"limit": 10, "lease_seconds": 60}, headers=admin)
    assert r.status_code == 200
    [effect] = r.json()["effects"]
    assert effect["key"] == key
    assert (effect["name"], effect["args"], effect["status"], effect["attempts"]) == (
        "refund",
        {"amount": "500"},
        "pending",
        1,
    )
    assert effect["case_id"] == case["id"]
    assert effect["policy"] == any_store.get(case["id"]).policy
    # leased: nobody else gets it meanwhile
    assert c.post("/effects/claim", json={}, headers=admin).json() == {"effects": []}

    r = c.post(f"/effects/{key}/fail", json={"error": "bank timeout"}, headers=admin)
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["last_error"]) == ("pending", "bank timeout")
    [again] = c.post("/effects/claim", json={}, headers=admin).json()["effects"]
    assert again["attempts"] == 2
    r = c.post(f"/effects/{key}/fail", json={"error": "bank down"}, headers=admin)
    assert r.json()["status"] == "dead"
    assert [e["key"] for e in c.get("/effects?status=dead", headers=admin).json()["effects"]] == [
        key
    ]

    r = c.post(f"/effects/{key}/retry", headers=admin)
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    [third] = c.post("/effects/claim", json={}, headers=admin).json()["effects"]
    # a report on an older claim changes nothing; one refused for good is dead at once
    stale = {"error": "late", "attempt": 7, "dead": True}
    r = c.post(f"/effects/{key}/fail", json=stale, headers=admin)
    assert (r.json()["status"], r.json()["last_error"]) == ("pending", "bank down")
    r = c.post(f"/effects/{third['key']}/ack", headers=admin)
    assert r.json()["status"] == "done"
    assert c.post(f"/effects/{key}/ack", headers=admin).json()["status"] == "done"  # harmless
    assert c.get("/effects", params={"status": "pending"}, headers=admin).json()["effects"] == []
    listed = c.get("/effects", params={"case_id": case["id"]}, headers=admin).json()["effects"]
    assert [(e["key"], e["status"]) for e in listed] == [(key, "done")]


def test_cases_of_an_older_policy_version_go_on_after_a_restart(
    tmp_path: Any, kuaishou: Policy, tokens: Tokens
) -> None:
    # Bug fixed: a step on a case pinned to a version this process had not registered read the
    # version back inside the step's transaction; SQLite cannot nest them: a 500 (and
    # `rulekit worker`, which registers nothing, could fire no deadline at all).
    db = tmp_path / "cases.db"
    with open_store(db, migrate=True) as store, make_client(store, kuaishou, tokens) as c:
        old = _opened(c)
    newer = tmp_path / "newer.rk"
    newer.write_text(
        POLICY_FILE.read_text(encoding="utf-8").replace(
            'version "2023-01-31"', 'version "2024-01-01"'
        ),
        encoding="utf-8",
    )
    v2 = policies.load(newer)
    with open_store(db) as store, make_client(store, v2, tokens) as c:
        r = send(c, old, "approve", "merchant")
        assert r.status_code == 200, r.text
        assert r.json()["case"]["policy"] == kuaishou.hash
        assert (
            _opened(c, id="new")
            and c.get("/cases/new", headers=auth("admin")).json()["policy"] == v2.hash
        )
        listed = c.get("/policies", headers=auth("admin")).json()["policies"]
        assert {(p["hash"], p["current"]) for p in listed} == {
            (kuaishou.hash, False),
            (v2.hash, True),
        }


# -- idempotency keys over HTTP ------------------------------------------------------------------
def test_an_event_sent_again_with_its_key_is_applied_once(any_client: TestClient) -> None:
    c = any_client
    case = open_case(c)
    key = {"Idempotency-Key": "reject-1"}
    first = send(c, case["id"], "reject", "merchant", data={"reason": "x"}, headers=key)
    again = send(c, case["id"], "reject", "merchant", data={"reason": "x"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert (first.json()["repeated"], again.json()["repeated"]) == (False, True)
    assert again.json()["records"] == first.json()["records"]
    assert again.json()["state"] == "merchant_rejected"
    # the same key with another request is refused, and changes nothing
    other = send(c, case["id"], "reject", "merchant", data={"reason": "y"}, headers=key)
    assert error_of(other) == (422, "idempotency_key_reused")
    history = c.get(f"/cases/{case['id']}/history", headers=auth("admin")).json()["records"]
    assert [h["kind"] for h in history] == ["open", "event"]
    # another caller's same key is another key: its step is applied
    other = send(c, case["id"], "reapply", "consumer", headers=key)
    assert (other.json()["repeated"], other.json()["state"]) == (False, "awaiting_merchant")
    assert send(c, case["id"], "reapply", "consumer", headers=key).json()["repeated"] is True
    # a new key is a new step
    r = send(
        c, case["id"], "reject", "merchant", data={"reason": "z"}, headers={"Idempotency-Key": "2"}
    )
    assert (r.json()["repeated"], r.json()["state"]) == (False, "merchant_rejected")


def test_a_refused_step_is_not_remembered_under_its_key(client: TestClient) -> None:
    case = open_case(client)
    key = {"Idempotency-Key": "k-1"}
    assert send(client, case["id"], "reject", "merchant", headers=key).status_code == 422
    r = send(client, case["id"], "reject", "merchant", data={"reason": "x"}, headers=key)
    assert (r.status_code, r.json()["repeated"]) == (200, False)


def test_an_effect_is_emitted_once_however_often_its_step_is_sent(any_client: TestClient) -> None:
    case = open_case(any_client)
    for _ in range(3):
        r = send(any_client, case["id"], "approve", "merchant", headers={"Idempotency-Key": "a"})
        assert r.status_code == 200
        assert r.json()["effects"] == [{"name": "refund", "args": {"amount": "500"}}]
    effects = any_client.get("/effects", headers=auth("admin")).json()["effects"]
    assert len(effects) == 1


def test_opening_again_with_the_key_and_id(any_client: TestClient) -> None:
    body = {"workflow": "refund_only", "facts": refund_facts(), "parties": PARTIES_A, "id": "k1"}
    headers = {**auth("admin"), "Idempotency-Key": "open-k1"}
    first = any_client.post("/cases", json=body, headers=headers)
    again = any_client.post("/cases", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert (first.json()["repeated"], again.json()["repeated"]) == (False, True)
    assert again.json()["case"]["id"] == "k1"
    # another key (or none) for an id that exists: case_exists
    r = any_client.post("/cases", json=body, headers={**auth("admin"), "Idempotency-Key": "x"})
    assert error_of(r) == (409, "case_exists")
    assert error_of(any_client.post("/cases", json=body, headers=auth("admin"))) == (
        409,
        "case_exists",
    )


def test_opening_again_with_the_key_and_no_id_opens_one_case(lax_client: TestClient) -> None:
    # Bug fixed: a random id was generated each time, so each retry opened another case.
    any_client = lax_client  # consumers supply the order's facts in the lax policy
    body = {"workflow": "refund_only", "facts": refund_facts(), "parties": {"consumer": "user-1"}}
    headers = {**auth("consumer"), "Idempotency-Key": "retry-me"}
    first = any_client.post("/cases", json=body, headers=headers)
    again = any_client.post("/cases", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["repeated"] is True
    assert again.json()["case"]["id"] == first.json()["case"]["id"]
    assert len(any_client.get("/cases", headers=auth("admin")).json()["cases"]) == 1
    # the same key from another caller is another request
    other = any_client.post(
        "/cases", json=body, headers={**auth("admin"), "Idempotency-Key": "retry-me"}
    )
    assert other.json()["repeated"] is False
    assert other.json()["case"]["id"] != first.json()["case"]["id"]


def test_opening_again_does_not_show_a_case_the_caller_cannot_see(lax_client: TestClient) -> None:
    client = lax_client  # consumers supply the order's facts in the lax policy
    # Bug fixed: a repeated open answered with the case as it is, to any caller with its key.
    # Keys are each caller's own: another consumer's same key opens a case of its own.
    body = {"workflow": "refund_only", "facts": refund_facts()}
    key = {"Idempotency-Key": "open-secret"}
    mine = client.post(
        "/cases",
        json={**body, "parties": {"consumer": "user-1"}},
        headers={**auth("consumer"), **key},
    )
    assert mine.status_code == 201
    r = client.post(
        "/cases",
        json={**body, "parties": {"consumer": "user-2"}},
        headers={**auth("other_consumer"), **key},
    )
    assert (r.status_code, r.json()["repeated"]) == (201, False)
    assert r.json()["case"]["id"] != mine.json()["case"]["id"]
    assert r.json()["case"]["parties"] == {"consumer": "user-2"}


# -- every error code, with its status -----------------------------------------------------------
Setup = Callable[[TestClient], Any]


def _opened(c: TestClient, **kw: Any) -> str:
    return str(open_case(c, **kw)["id"])


def _send_on_open(event: str, role: str, data: Any = None) -> Setup:
    return lambda c: send(c, _opened(c), event, role, data=data)


def _closed(c: TestClient) -> Any:
    case_id = _opened(c)
    send(c, case_id, "approve", "merchant")
    return send(c, case_id, "withdraw", "consumer")


def _open(**body: Any) -> Setup:
    body = {"workflow": "refund_only", "facts": refund_facts(), **body}
    return lambda c: c.post("/cases", json=body, headers=auth("admin"))


#: (code, status, a request that gets it)
ERRORS: list[tuple[str, int, Setup]] = [
    ("unauthorized", 401, lambda c: c.get("/cases")),
    ("unauthorized", 401, lambda c: c.get("/cases", headers={"Authorization": "Bearer nope"})),
    ("unauthorized", 401, lambda c: c.get("/cases", headers={"Authorization": "Basic eDp5"})),
    ("forbidden", 403, lambda c: c.post("/effects/claim", json={}, headers=auth("platform"))),
    ("case_not_found", 404, lambda c: c.get("/cases/no-such-case", headers=auth("admin"))),
    ("case_not_found", 404, lambda c: send(c, "no-such-case", "approve", "merchant")),
    ("effect_not_found", 404, lambda c: c.post("/effects/a/0/0/ack", headers=auth("admin"))),
    ("not_found", 404, lambda c: c.get("/no/such/route", headers=auth("admin"))),
    ("method_not_allowed", 405, lambda c: c.delete("/cases", headers=auth("admin"))),
    ("case_exists", 409, lambda c: [_open(id="twice")(c), _open(id="twice")(c)][1]),
    ("unknown_event", 422, _send_on_open("refund_now", "consumer")),
    (
        "event_not_allowed",
        409,
        _send_on_open("submit_waybill", "consumer", {"waybill_no": "Y", "carrier": "Z"}),
    ),
    ("actor_not_allowed", 403, _send_on_open("approve", "consumer")),
    (
        "fact_not_allowed",
        403,
        lambda c: c.post(
            "/cases",
            json={
                "workflow": "refund_only",
                "facts": refund_facts(),
                "parties": {"consumer": "user-1"},
            },
            headers=auth("consumer"),
        ),
    ),
    (
        "guard_failed",
        409,
        lambda c: send(c, _opened(c, workflow="return_refund"), "accept_offline", "consumer"),
    ),
    ("invalid_payload", 422, _send_on_open("reject", "merchant", {"reason": 42})),
    ("invalid_fact", 422, _open(facts={"order": {"amount": "lots"}})),
    (
        "invalid_fact",
        422,
        lambda c: c.post(
            f"/cases/{_opened(c)}/facts",
            json={"facts": {"order.colour": "red"}},
            headers=auth("admin"),
        ),
    ),
    ("case_closed", 409, _closed),
    ("unknown_workflow", 422, _open(workflow="refund_everything")),
    ("unknown_policy", 422, _open(policy="kuaishou.before_sales")),
    ("invalid_request", 422, _open(id="not an id!")),
    ("invalid_request", 422, lambda c: c.post("/cases", content=b"{", headers=auth("admin"))),
    # nested deeper than the JSON parser goes (the framework's own 400): the same error
    (
        "invalid_request",
        422,
        lambda c: c.post(
            "/cases",
            content=b'{"workflow": "w", "facts": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
            headers={**auth("admin"), "Content-Type": "application/json"},
        ),
    ),
    ("invalid_request", 422, lambda c: c.get("/cases?limit=0", headers=auth("admin"))),
    # a seq past any a database holds (found by schemathesis: SQLite overflowed, a 500)
    (
        "invalid_request",
        422,
        lambda c: c.get(
            f"/cases/{_opened(c)}/history?after={(1 << 63) - 1}", headers=auth("admin")
        ),
    ),
    ("invalid_request", 422, lambda c: c.get("/effects?status=lost", headers=auth("admin"))),
    (
        "invalid_request",
        422,
        lambda c: c.post("/effects/claim", json={"limit": 0}, headers=auth("admin")),
    ),
    (
        "invalid_request",
        422,
        lambda c: send(c, "x", "approve", "merchant", headers={"Idempotency-Key": "k" * 201}),
    ),
    # PostgreSQL's text holds no NUL: refused up front on every store (was a 500 there)
    ("invalid_request", 422, lambda c: c.get("/cases/a%00b", headers=auth("admin"))),
    ("invalid_request", 422, lambda c: c.get("/cases?workflow=a%00", headers=auth("admin"))),
    ("invalid_request", 422, _open(parties={"consumer": "user\x00"})),
    ("invalid_request", 422, _open(parties={f"actor{i}": "p" for i in range(17)})),
    # a lone surrogate (JSON can spell one: "\\udfff") is no text a database can store
    (
        "invalid_request",
        422,
        lambda c: c.post(
            "/cases",
            content=json.dumps({"workflow": "refund_only", "facts": {"order": {"x": "\udfff"}}}),
            headers={**auth("admin"), "Content-Type": "application/json"},
        ),
    ),
    (
        "idempotency_key_reused",
        422,
        lambda c: [
            send(
                c,
                case_id,
                "reject",
                "merchant",
                data={"reason": r},
                headers={"Idempotency-Key": "k"},
            )
            for case_id in [_opened(c)]
            for r in ("first", "second")
        ][1],
    ),
    (
        "payload_too_large",
        413,
        lambda c: c.post("/cases", content=b" " * (1 << 20) + b"{}", headers=auth("admin")),
    ),
    (
        "invalid_request",
        422,
        lambda c: c.post("/effects/x/fail", json={"error": "a\x00"}, headers=auth("admin")),
    ),
]
#: codes exercised by tests of their own below
ELSEWHERE = {
    "evaluation_error",
    "internal_error",
    "commit_unknown",
    "store_unavailable",
    "store_damaged",
}


def test_every_error_code_is_exercised() -> None:
    assert {code for code, _, _ in ERRORS} | ELSEWHERE == set(PROBLEMS)


@pytest.mark.parametrize(
    ("code", "status", "request_"), ERRORS, ids=[f"{i}-{e[0]}" for i, e in enumerate(ERRORS)]
)
def test_error_codes_and_statuses(
    client: TestClient, code: str, status: int, request_: Setup
) -> None:
    r = request_(client)
    assert error_of(r) == (status, code), r.text
    assert PROBLEMS[code][0] == status
    if code == "unauthorized":
        assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("code", "status", "request_"),
    [e for e in ERRORS if e[0] in {"case_not_found", "invalid_request", "unknown_workflow"}][:6],
)
def test_error_codes_on_postgresql(
    postgres_store: SqlStore,
    kuaishou: Policy,
    tokens: Tokens,
    code: str,
    status: int,
    request_: Setup,
) -> None:
    with make_client(postgres_store, kuaishou, tokens) as c:
        assert error_of(request_(c)) == (status, code)


def test_nul_characters_get_a_4xx_on_postgresql(
    postgres_store: SqlStore, kuaishou: Policy, tokens: Tokens
) -> None:
    # Bug fixed: these reached PostgreSQL, which refused them (DataError): a 500.
    with make_client(postgres_store, kuaishou, tokens) as c:
        admin = auth("admin")
        for r in (
            c.get("/cases/a%00b", headers=admin),
            c.get("/cases?after=a%00", headers=admin),
            c.get("/effects?case_id=a%00", headers=admin),
            c.post("/effects/a%00/ack", headers=admin),
            _open(parties={"a\x00": "b"})(c),
            c.post("/effects/x/fail", json={"error": "a\x00"}, headers=admin),
        ):
            assert error_of(r) == (422, "invalid_request")
        assert c.get("/cases", headers=admin).json()["cases"] == []


def test_evaluation_error(
    client: TestClient, sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = _opened(client)

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise EvaluationError("division by zero")

    monkeypatch.setattr(sqlite_store, "send", fails)
    assert error_of(send(client, case_id, "approve", "merchant")) == (422, "evaluation_error")


def test_an_unexpected_failure_is_a_problem_that_shows_no_internals(
    sqlite_store: SqlStore, kuaishou: Policy, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug in the service (or a library) is a 500 problem document like any other error,
    # saying nothing of what failed inside: the log has that.
    app = create_app(Service(sqlite_store, [kuaishou], tokens, worker_interval=None))
    with TestClient(app, raise_server_exceptions=False) as c:
        case_id = _opened(c)

        def fails(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("secret /srv/internals")

        monkeypatch.setattr(sqlite_store, "send", fails)
        r = send(c, case_id, "approve", "merchant")
    assert error_of(r) == (500, "internal_error")
    assert "secret" not in r.text and "Traceback" not in r.text


def test_commit_unknown(
    client: TestClient, sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = _opened(client)
    real = sqlite_store.dialect.transaction

    @contextmanager
    def commit_lost(write: bool) -> Iterator[Any]:
        with real(write) as cur:
            yield cur
            if write:  # the connection broke as the step was committing
                raise CommitUnknown("connection lost")

    monkeypatch.setattr(sqlite_store.dialect, "transaction", commit_lost)
    monkeypatch.setattr(sqlite_store, "retries", 0)
    assert error_of(send(client, case_id, "approve", "merchant")) == (503, "commit_unknown")
    r = send(client, case_id, "approve", "merchant", headers={"Idempotency-Key": "k"})
    assert error_of(r) == (503, "commit_unknown")
    monkeypatch.undo()
    assert (
        client.get(f"/cases/{case_id}", headers=auth("admin")).json()["state"]
        == "awaiting_merchant"
    )


def test_store_unavailable(
    client: TestClient, sqlite_store: SqlStore, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bug fixed: a database that stayed locked (or a lost PostgreSQL) was a 500.
    case_id = _opened(client)
    monkeypatch.setattr(sqlite_store, "retries", 0)
    monkeypatch.setattr(sqlite_store.dialect, "_busy_timeout", 0.05)
    sqlite_store.dialect.close()  # reconnect with the short busy timeout
    other = sqlite3.connect(tmp_path / "cases.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert error_of(send(client, case_id, "approve", "merchant")) == (503, "store_unavailable")
    finally:
        other.rollback()
        other.close()
    assert send(client, case_id, "approve", "merchant").status_code == 200


# -- OpenAPI ---------------------------------------------------------------------------------
ROUTES = {
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/policies"),
    ("post", "/cases"),
    ("get", "/cases"),
    ("get", "/cases/{case_id}"),
    ("get", "/cases/{case_id}/history"),
    ("get", "/cases/{case_id}/explain"),
    ("post", "/cases/{case_id}/events"),
    ("post", "/cases/{case_id}/facts"),
    ("post", "/effects/claim"),
    ("post", "/effects/{key}/ack"),
    ("post", "/effects/{key}/fail"),
    ("post", "/effects/{key}/retry"),
    ("get", "/effects"),
    ("post", "/policies/migrate"),
    ("post", "/policies/impact"),
    ("get", "/cases/export"),
    ("post", "/cases/import"),
}


def test_openapi_document_is_valid_openapi_3_1_with_every_route(client: TestClient) -> None:
    from jsonschema import Draft202012Validator

    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["version"] == __version__
    assert {(m, p) for p, item in doc["paths"].items() for m in item} == ROUTES
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("responses"), (method, path)
    # the schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), and schemathesis loads it
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    import schemathesis

    loaded = schemathesis.openapi.from_dict(doc)
    loaded.validate()  # against the OpenAPI 3.1 meta-schema schemathesis carries
    assert {(o.ok().method, o.ok().path) for o in loaded.get_all_operations()} == ROUTES
    assert client.get("/docs").status_code == 200


# -- metrics ---------------------------------------------------------------------------------
def metrics(client: TestClient) -> dict[str, Any]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample(family: Any, suffix: str = "", **labels: str) -> float:
    values = [
        s.value
        for s in family.samples
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(values) == 1, (family.name, labels, family.samples)
    return float(values[0])


def test_metrics_are_prometheus_text_with_the_documented_names(any_client: TestClient) -> None:
    c = any_client
    case_id = _opened(c)
    send(c, case_id, "approve", "consumer")  # refused
    send(c, case_id, "approve", "merchant", headers={"Idempotency-Key": "k"})
    send(c, case_id, "approve", "merchant", headers={"Idempotency-Key": "k"})  # repeated
    _opened(c, id="waiting")
    c.get("/cases/missing", headers=auth("admin"))
    c.get("/cases/missing")  # no token: refused by the gate, before any routing
    c.delete("/cases", headers=auth("admin"))  # a route, not with this method
    c.get("/no/such/route", headers=auth("admin"))

    families = metrics(c)
    assert {name: f.type for name, f in families.items() if name in METRICS} == METRICS
    steps = families["rulekit_steps"]
    assert sample(steps, "_total", kind="open", outcome="applied") == 2
    assert sample(steps, "_total", kind="event", outcome="applied") == 1
    assert sample(steps, "_total", kind="event", outcome="repeated") == 1
    assert sample(steps, "_total", kind="event", outcome="actor_not_allowed") == 1
    requests = families["rulekit_http_requests"]
    assert (
        sample(requests, "_total", route="/cases/{case_id}/events", method="POST", status="403")
        == 1
    )
    assert sample(requests, "_total", route="/cases/{case_id}", method="GET", status="404") == 1
    # each labelled by the route it went to or would have gone to: their template, or none
    assert sample(requests, "_total", route="/cases/{case_id}", method="GET", status="401") == 1
    assert sample(requests, "_total", route="/cases", method="DELETE", status="405") == 1
    assert sample(requests, "_total", route="unmatched", method="GET", status="404") == 1
    assert sample(families["rulekit_step_seconds"], "_count", kind="event") == 2
    cases = families["rulekit_cases"]
    assert sample(cases, workflow="refund_only", state="refunded") == 1
    assert sample(cases, workflow="refund_only", state="awaiting_merchant") == 1
    assert sample(families["rulekit_deadlines_pending"]) == 1
    effects = families["rulekit_effects"]
    assert (sample(effects, status="pending"), sample(effects, status="done")) == (1, 0)
    assert sample(families["rulekit_deadlines_fired"], "_total") == 0


def test_the_in_process_worker_fires_due_deadlines(
    sqlite_store: SqlStore, kuaishou: Policy, tokens: Tokens
) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    paid = (past - timedelta(hours=1)).isoformat()
    sqlite_store.register(kuaishou)
    sqlite_store.open(
        "refund_only",
        refund_facts(paid_at=paid),
        id="overdue",
        parties=PARTIES_A,
        at=past,
    )
    service = Service(sqlite_store, [kuaishou], tokens, worker_interval=0.05)
    with TestClient(create_app(service)) as c:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if c.get("/cases/overdue", headers=auth("admin")).json()["state"] == "refunded":
                break
            time.sleep(0.05)
        view = c.get("/cases/overdue", headers=auth("admin")).json()
        assert view["state"] == "refunded", view
        assert view["history"][-1]["kind"] != "event"
        assert sample(metrics(c)["rulekit_deadlines_fired"], "_total") == 1
        assert c.get("/effects", headers=auth("admin")).json()["effects"][0]["args"] == {
            "amount": "500"
        }
