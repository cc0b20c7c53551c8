"""The HTTP service and its stores as an attacker tries them (issue 11: trust boundaries).

One regression test per finding of the service's part (2, 5, 6, 7, 9, 10, and of 11
the lone surrogates, the damaged store and the open-case counts), the OpenAPI
security scheme, and the abuse cases: bodies without a token, bodies too large
(declared, and chunked), idempotency keys reused across callers and bodies, and
probing for case ids. Each failed on the code before the fix (the reason is in
the test's comment). Tests taking ``any_client`` or ``any_store`` run on SQLite
and on PostgreSQL (when RULEKIT_TEST_POSTGRES_DSN is set).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import string
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rulekit import policy as policies
from rulekit.core.errors import StepRefused
from rulekit.policy import Policy
from rulekit.service.app import LIMITS, Service, create_app
from rulekit.service.auth import Tokens
from rulekit.service.gate import OPEN_PATHS
from rulekit.stores import SqlStore, StoreError, open_store
from rulekit.stores.worker import Worker
from service.service_support import (
    PARTIES_A,
    PARTIES_B,
    TestClient,
    auth,
    error_of,
    lax_kuaishou_text,
    make_client,
    open_case,
    refund_facts,
)

ADMIN_KEYED_IDS = uuid.UUID("5b0c7c8e-2f55-4d0e-9a43-5a1a3c2f4e61")  # the old code's constant


def post(client: TestClient, path: str, body: Any, role: str, key: str | None = None) -> Any:
    headers = {**auth(role), **({"Idempotency-Key": key} if key else {})}
    return client.post(path, json=body, headers=headers)


def opening(parties: dict[str, str], **facts: Any) -> dict[str, Any]:
    return {"workflow": "refund_only", "facts": refund_facts(**facts), "parties": parties}


# -- finding 2: keyed opens could be hijacked ---------------------------------------------------
def test_finding_2_a_keyed_open_cannot_be_claimed_by_another_caller(
    lax_client: TestClient,
) -> None:
    # Before: the id of a keyed open was uuid5(constant, "admin\n" + key); a consumer opened
    # that id first with its own facts, and the admin's open got `repeated: true` with them.
    c = lax_client
    predicted = uuid.uuid5(ADMIN_KEYED_IDS, "admin\norder-777").hex
    squat = post(c, "/cases", {**opening(PARTIES_A, amount=9999), "id": predicted}, "consumer")
    assert error_of(squat) == (403, "forbidden")  # only an admin chooses ids
    # the consumer's own keyed open is its own: the admin's same key is another key
    mine = post(c, "/cases", opening({"consumer": "user-1"}, amount=9999), "consumer", "order-777")
    assert mine.status_code == 201, mine.text
    r = post(c, "/cases", opening(PARTIES_A), "admin", "order-777")
    assert r.status_code == 201, r.text
    assert r.json()["repeated"] is False
    case = r.json()["case"]
    assert (case["parties"], case["facts"]["order"]["amount"]) == (PARTIES_A, "500")
    assert case["id"] not in (predicted, mine.json()["case"]["id"])


def test_finding_2_keyed_ids_cannot_be_predicted(
    tmp_path: Path, kuaishou: Policy, tokens: Tokens
) -> None:
    # Before: the same caller and key gave the same id in every store (a derivable id).
    ids = []
    for n in range(2):
        with (
            open_store(tmp_path / f"{n}.db", migrate=True) as store,
            make_client(store, kuaishou, tokens) as c,
        ):
            ids.append(
                post(c, "/cases", opening(PARTIES_A), "admin", "order-1").json()["case"]["id"]
            )
    assert ids[0] != ids[1]


# -- finding 5: keys were per case, and the body was not compared -------------------------------
def test_finding_5_keys_are_per_caller_and_per_request(any_client: TestClient) -> None:
    # Before: the merchant's key E1 (reject) replayed by the consumer with `escalate`, or by the
    # merchant with `approve`, answered `repeated: true` with the merchant's first step.
    c = any_client
    case_id = open_case(c)["id"]
    path = f"/cases/{case_id}/events"
    first = post(c, path, {"event": "reject", "data": {"reason": "no"}}, "merchant", "E1")
    assert first.status_code == 200 and first.json()["repeated"] is False
    # the merchant, the same key, another request: refused, and nothing changes
    approve = post(c, path, {"event": "approve"}, "merchant", "E1")
    assert error_of(approve) == (422, "idempotency_key_reused")
    # the consumer's E1 is its own key: its event is applied, as the consumer's
    escalate = post(c, path, {"event": "escalate"}, "consumer", "E1")
    assert escalate.status_code == 200, escalate.text
    assert escalate.json()["repeated"] is False
    assert [r["actor"] for r in escalate.json()["records"]][:1] == ["consumer"]
    # and the merchant's same request again is still answered with its first result
    again = post(c, path, {"event": "reject", "data": {"reason": "no"}}, "merchant", "E1")
    assert again.json()["repeated"] is True
    assert again.json()["records"] == first.json()["records"]
    history = c.get(f"{path.rsplit('/', 1)[0]}/history", headers=auth("admin")).json()["records"]
    assert [(h["event"], h["actor"]) for h in history[1:]] == [
        ("reject", "merchant"),
        ("escalate", "consumer"),
    ]


def test_finding_5_a_keyed_open_with_another_body_is_refused(lax_client: TestClient) -> None:
    c = lax_client
    first = post(c, "/cases", opening({"consumer": "user-1"}), "consumer", "o-1")
    assert first.status_code == 201
    other = post(c, "/cases", opening({"consumer": "user-1"}, amount=9999), "consumer", "o-1")
    assert error_of(other) == (422, "idempotency_key_reused")
    same = post(c, "/cases", opening({"consumer": "user-1"}) | {"facts": None}, "consumer", "o-1")
    assert same.status_code == 422  # (not a fingerprint: the body is invalid)
    body = json.loads(first.request.content)
    again = post(c, "/cases", body, "consumer", "o-1")
    assert (again.status_code, again.json()["repeated"]) == (201, True)
    assert again.json()["case"]["id"] == first.json()["case"]["id"]


def test_finding_5_keys_in_the_store(any_store: SqlStore, kuaishou: Policy) -> None:
    # The Python API without a caller is one trusted caller, as before: a key answers its
    # first step whatever is sent with it. With callers, keys are each caller's own.
    any_store.register(kuaishou)
    case, _ = any_store.open("refund_only", refund_facts(), parties=PARTIES_A)
    _, first = any_store.send(case.id, "reject", "merchant", {"reason": "no"}, key="k")
    _, again = any_store.send(case.id, "withdraw", "consumer", key="k")
    assert again.repeated and again.state == first.state == "merchant_rejected"
    _, other = any_store.send(case.id, "reapply", "consumer", key="k", caller="consumer:user-1")
    assert not other.repeated and other.state == "awaiting_merchant"
    send = any_store.send
    send(case.id, "escalate", "merchant", key="k2", caller="merchant:shop-1", fingerprint="a")
    with pytest.raises(StoreError) as reused:
        send(case.id, "approve", "merchant", key="k2", caller="merchant:shop-1", fingerprint="b")
    assert reused.value.code == "idempotency_key_reused"
    assert send(
        case.id, "escalate", "merchant", key="k2", caller="merchant:shop-1", fingerprint="a"
    )[1].repeated


# -- finding 6: ids leaked and could be squatted ------------------------------------------------
#: route -> a request about case ``{id}`` (or its refund's effect ``{effect}``) as some role
PROBES: dict[str, Callable[[TestClient, str, str, dict[str, str]], Any]] = {
    "POST /cases {id}": lambda c, i, e, h: c.post(
        "/cases", json={**opening({"consumer": "user-1"}), "id": i}, headers=h
    ),
    "GET /cases after": lambda c, i, e, h: c.get(
        "/cases", params={"after": i[:-1], "limit": 5}, headers=h
    ),
    "GET /cases/{id}": lambda c, i, e, h: c.get(f"/cases/{i}", headers=h),
    "GET /cases/{id}/history": lambda c, i, e, h: c.get(f"/cases/{i}/history", headers=h),
    "POST /cases/{id}/events": lambda c, i, e, h: c.post(
        f"/cases/{i}/events", json={"event": "escalate"}, headers=h
    ),
    "POST /cases/{id}/events keyed": lambda c, i, e, h: c.post(
        f"/cases/{i}/events", json={"event": "escalate"}, headers={**h, "Idempotency-Key": "k"}
    ),
    "POST /cases/{id}/facts": lambda c, i, e, h: c.post(
        f"/cases/{i}/facts", json={"facts": {"order.amount": 1}}, headers=h
    ),
    "GET /effects": lambda c, i, e, h: c.get("/effects", params={"case_id": i}, headers=h),
    "POST /effects/claim": lambda c, i, e, h: c.post("/effects/claim", json={}, headers=h),
    "POST /effects/{key}/ack": lambda c, i, e, h: c.post(f"/effects/{e}/ack", headers=h),
    "POST /effects/{key}/fail": lambda c, i, e, h: c.post(
        f"/effects/{e}/fail", json={"error": "x"}, headers=h
    ),
    "POST /effects/{key}/retry": lambda c, i, e, h: c.post(f"/effects/{e}/retry", headers=h),
}


@pytest.mark.parametrize("role", ["merchant", "consumer", "other_consumer"])
@pytest.mark.parametrize("route", list(PROBES))
def test_finding_6_no_existence_oracle(
    any_client: TestClient, any_store: SqlStore, route: str, role: str
) -> None:
    # Before: a non-party's `POST /cases {"id": "c3"}` got 409 case_exists for an existing id
    # and 422 (or 201) otherwise. Now every route answers a case the caller may not see
    # exactly as one that does not exist (status and body, the id aside).
    c = any_client
    parties = PARTIES_B if role != "other_consumer" else PARTIES_A
    theirs = post(c, "/cases", {**opening(parties), "id": "c3-theirs"}, "admin").json()["case"]
    any_store.send(theirs["id"], "approve", "merchant")
    effect = f"{theirs['id']}/1/0"
    missing = "c3-absent"

    exists = PROBES[route](c, theirs["id"], effect, auth(role))
    absent = PROBES[route](c, missing, f"{missing}/1/0", auth(role))

    assert exists.status_code == absent.status_code, (exists.text, absent.text)
    assert exists.status_code != 200 or route == "GET /cases after"
    assert exists.text.replace(theirs["id"], missing) == absent.text


def test_finding_6_ids_cannot_be_squatted(any_client: TestClient) -> None:
    c = any_client
    r = post(c, "/cases", {**opening({"consumer": "user-1"}), "id": "order-42"}, "consumer")
    assert error_of(r) == (403, "forbidden")
    assert "id" in r.json()["detail"]
    # the integration's case gets its id
    assert post(c, "/cases", {**opening(PARTIES_A), "id": "order-42"}, "admin").status_code == 201


def test_a_consumer_names_only_itself_as_a_party(lax_client: TestClient) -> None:
    # Before: a consumer could open a case naming any merchant as the other party.
    c = lax_client
    for parties in (PARTIES_A, {"consumer": "user-1", "merchant": "shop-9"}, {}):
        assert error_of(post(c, "/cases", opening(parties), "consumer")) == (403, "forbidden")
    assert error_of(post(c, "/cases", opening({"consumer": "user-1"}), "platform")) == (
        403,
        "forbidden",
    )
    r = post(c, "/cases", opening({"consumer": "user-1"}), "consumer")
    assert (r.status_code, r.json()["case"]["parties"]) == (201, {"consumer": "user-1"})


# -- finding 7: superseded versions could be chosen ---------------------------------------------
def test_finding_7_opens_use_the_current_version(
    tmp_path: Path, lax_kuaishou: Policy, tokens: Tokens
) -> None:
    # Before: after any read of a case pinned to an older version, a consumer's open naming
    # that version's hash was accepted (the store resolved hashes through its engine cache).
    db = tmp_path / "cases.db"
    with open_store(db, migrate=True) as store:
        store.register(lax_kuaishou)
        old, _ = store.open("refund_only", refund_facts(), parties=PARTIES_A)
    newer = tmp_path / "newer.rk"
    newer.write_text(
        lax_kuaishou_text().replace('version "2023-01-31"', 'version "2024-01-01"'),
        encoding="utf-8",
    )
    v2 = policies.load(newer)
    consumer_open = {**opening({"consumer": "user-1"}), "policy": lax_kuaishou.hash}
    with open_store(db) as store, make_client(store, v2, tokens) as c:
        before = post(c, "/cases", consumer_open, "consumer")
        assert c.get(f"/cases/{old.id}", headers=auth("consumer")).status_code == 200
        after = post(c, "/cases", consumer_open, "consumer")
        assert error_of(before) == error_of(after) == (422, "unknown_policy")
        assert before.json() == after.json()
        # the current version by hash, or by name
        current = post(c, "/cases", consumer_open | {"policy": v2.hash}, "consumer")
        assert current.json()["case"]["policy"] == v2.hash
        by_name = post(c, "/cases", consumer_open | {"policy": v2.name}, "consumer")
        assert by_name.json()["case"]["policy"] == v2.hash
        # an admin may name any stored version
        admin = post(c, "/cases", opening(PARTIES_A) | {"policy": lax_kuaishou.hash}, "admin")
        assert admin.json()["case"]["policy"] == lax_kuaishou.hash


# -- finding 9: bodies were read before callers were known, and unbounded -----------------------
def test_finding_9_no_body_is_read_before_the_caller_is_known(any_client: TestClient) -> None:
    # Before: `{not json` with no token got 422 (the body was parsed first), not 401.
    for headers in ({}, {"Authorization": "Bearer not-a-token-at-all"}):
        r = any_client.post(
            "/cases", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
        )
        assert error_of(r) == (401, "unauthorized")


def _asgi(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, int, bytes]:
    """POST an endless body straight to the ASGI app: (status, body bytes it read, answer)."""
    read = 0
    out: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 65536
        return {"type": "http.request", "body": b" " * 65536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
    return out[0]["status"], read, body


@pytest.mark.parametrize("max_body", [LIMITS["max_body"], 1000])
def test_finding_9_bodies_are_bounded_without_reading_past_the_limit(
    sqlite_store: SqlStore, kuaishou: Policy, tokens: Tokens, max_body: int
) -> None:
    # Before: a 50 MB authenticated body was read whole and accepted (201); an endless one
    # was read for ever. Now: 413 payload_too_large, having read no more than the limit and
    # one chunk; a declared length over the limit is refused before any of it is read.
    service = Service(sqlite_store, [kuaishou], tokens, worker_interval=None, max_body=max_body)
    app = create_app(service)
    token = (b"authorization", auth("admin")["Authorization"].encode())
    status, read, body = _asgi(app, "/cases", [token])  # chunked: no length declared
    assert (status, json.loads(body)["code"]) == (413, "payload_too_large")
    assert read <= max_body + 65536
    declared = (b"content-length", str(max_body + 1).encode())
    status, read, body = _asgi(app, "/cases", [token, declared])
    assert (status, read) == (413, 0)
    status, read, _ = _asgi(app, "/cases", [declared])  # and no token: 401, nothing read
    assert (status, read) == (401, 0)
    # just within the limit, the request goes on (and is judged on its content)
    with TestClient(app) as c:
        padded = json.dumps(opening(PARTIES_A)).encode()
        padded += b" " * (max_body - len(padded))
        r = c.post(
            "/cases", content=padded, headers={**auth("admin"), "Content-Type": "application/json"}
        )
        assert r.status_code == 201, r.text
        r = c.post("/cases", content=padded + b" ", headers=auth("admin"))
        assert error_of(r) == (413, "payload_too_large")
        chunks = (padded[i : i + 4096] + b" " for i in range(0, len(padded), 4096))
        r = c.post("/cases", content=chunks, headers=auth("admin"))  # chunked, one too many
        assert error_of(r) == (413, "payload_too_large")


#: a body over a bound of facts, payloads or parties -> the bound its message names
BOUNDS: list[tuple[str, Callable[[str], tuple[str, dict[str, Any]]], str]] = [
    (
        "200,000 parties",  # (longer than the body limit too: 413 first)
        lambda case: ("/cases", opening({f"a{i}": "p" for i in range(200_000)})),
        "bytes",
    ),
    (
        "17 parties",
        lambda case: ("/cases", opening({f"a{i}": "p" for i in range(17)})),
        "16",
    ),
    ("a long principal", lambda case: ("/cases", opening({"consumer": "u" * 201})), "200"),
    (
        "1,001 facts",
        lambda case: ("/cases", {**opening(PARTIES_A), "facts": {f"f{i}": i for i in range(1001)}}),
        "1000",
    ),
    (
        "facts nested 17 deep",
        lambda case: ("/cases", {**opening(PARTIES_A), "facts": _nested(17)}),
        "16",
    ),
    (
        "a payload of 1,001 values",
        lambda case: (
            f"/cases/{case}/events",
            {"event": "reject", "data": {"x": list(range(1000))}},
        ),
        "1000",
    ),
    (
        "a payload nested 17 deep",
        lambda case: (f"/cases/{case}/events", {"event": "reject", "data": _nested(17)}),
        "16",
    ),
    (
        "updated facts nested 17 deep",
        lambda case: (f"/cases/{case}/facts", {"facts": _nested(17)}),
        "16",
    ),
]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize(("what", "request_", "bound"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_finding_9_parties_facts_and_payloads_are_bounded(
    any_client: TestClient,
    what: str,
    request_: Callable[[str], tuple[str, dict[str, Any]]],
    bound: str,
) -> None:
    # Before: 200,000 parties were accepted (201); facts and payloads had no bound at all.
    case_id = open_case(any_client)["id"]
    path, body = request_(case_id)
    r = any_client.post(
        path, json=body, headers=auth("admin" if "events" not in path else "merchant")
    )
    expected = (413, "payload_too_large") if bound == "bytes" else (422, "invalid_request")
    assert error_of(r) == expected, r.text
    assert bound in r.json()["detail"]
    # within the bounds: 16 parties, depth 16, 1,000 values in all are accepted
    at_most = opening({f"a{i}": "p" * 200 for i in range(16)})
    assert post(any_client, "/cases", at_most, "admin").status_code == 201


# -- finding 10: /metrics grew without bound ----------------------------------------------------
def test_finding_10_metric_labels_come_from_fixed_sets(any_client: TestClient) -> None:
    # Before: 300 requests with random method names made 302 series, without a token.
    rng = random.Random(10)
    for _ in range(300):
        method = "".join(rng.choices(string.ascii_uppercase, k=8))
        path = rng.choice(["/cases", "/no/such/route", f"/cases/{rng.random()}"])
        any_client.request(method, path)
    text = any_client.get("/metrics").text
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "rulekit_http_requests"
    ]
    series = {tuple(sorted(s.labels.items())) for s in family.samples if s.name.endswith("_total")}
    assert len(series) <= 5, series
    assert {dict(s)["method"] for s in series} <= {"other", "GET"}


# -- finding 11 (the service's and the stores' part) -------------------------------------------
def test_finding_11_a_lone_surrogate_is_refused_not_a_500(
    any_client: TestClient, any_store: SqlStore
) -> None:
    # Before: "\udfff" in a fact or a payload reached the store: UnicodeEncodeError, a 500.
    c = any_client
    case_id = open_case(c)["id"]
    headers = {**auth("admin"), "Content-Type": "application/json"}
    for path, body, role in (
        ("/cases", {**opening(PARTIES_A), "facts": {"rejection": {"reason": "\udfff"}}}, "admin"),
        ("/cases", {**opening(PARTIES_A), "facts": {"\udfff": 1}}, "admin"),
        (f"/cases/{case_id}/events", {"event": "reject", "data": {"reason": "\udfff"}}, "merchant"),
        (f"/cases/{case_id}/facts", {"facts": {"rejection.reason": "a\udfffb"}}, "admin"),
    ):
        r = c.post(path, content=json.dumps(body), headers={**headers, **auth(role)})
        assert error_of(r) == (422, "invalid_request"), r.text
        assert "surrogate" in r.json()["detail"]
    # through the Python API: the fact or payload conversion refuses it
    with pytest.raises(StepRefused) as refused:
        any_store.send(case_id, "reject", "merchant", {"reason": "\udfff"})
    assert refused.value.code == "invalid_payload"
    with pytest.raises(StepRefused) as refused:
        any_store.update(case_id, {"rejection.reason": "\udfff"})
    assert refused.value.code == "invalid_fact"


def test_finding_11_open_case_counts_are_for_admins_only(any_client: TestClient) -> None:
    # Before: every caller saw how many cases were open on each version.
    open_case(any_client)
    for role in ("merchant", "consumer", "platform"):
        listed = any_client.get("/policies", headers=auth(role)).json()["policies"]
        assert [p["open_cases"] for p in listed] == [None]
    listed = any_client.get("/policies", headers=auth("admin")).json()["policies"]
    assert [p["open_cases"] for p in listed] == [1]


def _damage(db: Path, table: str) -> None:
    """Overwrite the root page of ``table`` in a SQLite file (checkpointed, closed) with junk."""
    with sqlite3.connect(db) as conn:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * size)
        f.write(bytes(range(256)) * (size // 256))


def test_finding_11_a_damaged_store_is_reported_as_such(
    tmp_path: Path, kuaishou: Policy, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: a damaged page was a sqlite3.DatabaseError traceback (a 500, and the end of
    # `serve`) while /health said ok.
    db = tmp_path / "cases.db"
    with open_store(db, migrate=True) as store, make_client(store, kuaishou, tokens) as c:
        case_id = open_case(c)["id"]
    for table in ("rk_cases", "rk_deadlines", "rk_deadlines_pending"):
        _damage(db, table)
    with open_store(db) as store, make_client(store, kuaishou, tokens) as c:
        r = c.get(f"/cases/{case_id}", headers=auth("admin"))
        assert error_of(r) == (503, "store_damaged")
        r = c.post(f"/cases/{case_id}/events", json={"event": "approve"}, headers=auth("merchant"))
        assert error_of(r) == (503, "store_damaged")
        health = c.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "store_damaged"
        assert health.json()["error"]["code"] == "store_damaged"
        # the deadline worker meets it as a StoreError: it logs it and goes on
        with pytest.raises(StoreError) as damaged:
            Worker(store).run_once()
        assert damaged.value.code == "store_damaged"
        worker = Worker(store, interval=0.01)
        with caplog.at_level(logging.ERROR, "rulekit"):
            worker.start()
            try:
                deadline = time.monotonic() + 20  # generous: it logs within milliseconds
                while not any("damaged" in m for m in caplog.messages):
                    assert time.monotonic() < deadline, caplog.messages
                    time.sleep(0.01)
                time.sleep(0.05)  # a few more rounds
                assert worker._thread is not None and worker._thread.is_alive()
            finally:
                worker.stop()


# -- the OpenAPI document declares how to authenticate -----------------------------------------
def test_openapi_declares_the_bearer_scheme(any_client: TestClient) -> None:
    # Before: no securitySchemes, and no operation said it needs a token.
    doc = any_client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            expected = None if path in OPEN_PATHS else [{"bearer": []}]
            assert operation.get("security") == expected, (method, path)
    # and the service's own 401 body, not the framework's
    assert error_of(any_client.get("/cases")) == (401, "unauthorized")
