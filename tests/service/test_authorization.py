"""Who may do what over HTTP: the authorization matrix as data, tokens files and dev tokens.

Two cases: A belongs to shop-1 and user-1 (the ``merchant`` and ``consumer``
roles), B to shop-2 and user-2 (``other_merchant``, ``other_consumer``). Each
row of :data:`MATRIX` is an endpoint; each cell the status a role gets on case
A and on case B. A case a caller may not see does not exist for it: 404, with
the body a case that never existed gets, never 403.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rulekit.policy import Policy
from rulekit.service.auth import Caller, DevTokens, Tokens, TokensError
from rulekit.stores import SqlStore, open_store

from .service_support import (
    PARTIES_A,
    PARTIES_B,
    TOKENS,
    TOKENS_FILE,
    TestClient,
    error_of,
    make_client,
    refund_facts,
)

ROLES = [
    "merchant",
    "other_merchant",
    "consumer",
    "other_consumer",
    "platform",
    "admin",
    "no_token",
    "unknown_token",
]
#: the actor each role's events are sent as
ACTOR = {
    "merchant": "merchant",
    "other_merchant": "merchant",
    "consumer": "consumer",
    "other_consumer": "consumer",
    "platform": "platform",
}

# Expected outcomes: a status, or a status with the error code it must carry.
OK, CREATED = 200, 201
#: the served policy's version (a migration to it has nothing to move: a harmless request)
KUAISHOU_VERSION = "2023-01-31"
NOAUTH = (401, "unauthorized")
HIDDEN = (404, "case_not_found")
FORBIDDEN = (403, "forbidden")
ACTOR_NOT_ALLOWED = (403, "actor_not_allowed")
FACT_NOT_ALLOWED = (403, "fact_not_allowed")  # the policy's order facts are the integration's
LISTED, UNLISTED = "listed", "unlisted"  # GET /cases: 200, with or without the case

Outcome = int | tuple[int, str] | str


def row(
    merchant: tuple[Outcome, Outcome],
    other_merchant: tuple[Outcome, Outcome],
    consumer: tuple[Outcome, Outcome],
    other_consumer: tuple[Outcome, Outcome],
    platform: tuple[Outcome, Outcome],
    admin: tuple[Outcome, Outcome],
    anonymous: Outcome = NOAUTH,
) -> dict[str, tuple[Outcome, Outcome]]:
    """One endpoint's cells: role -> (on case A, on case B); no or an unknown token: ``anonymous``."""
    return {
        "merchant": merchant,
        "other_merchant": other_merchant,
        "consumer": consumer,
        "other_consumer": other_consumer,
        "platform": platform,
        "admin": admin,
        "no_token": (anonymous, anonymous),
        "unknown_token": (anonymous, anonymous),
    }


EVERYONE = row(*[(OK, OK)] * 6, anonymous=OK)
ANY_TOKEN = row(*[(OK, OK)] * 6)
SEES = row(
    merchant=(OK, HIDDEN),
    other_merchant=(HIDDEN, OK),
    consumer=(OK, HIDDEN),
    other_consumer=(HIDDEN, OK),
    platform=(OK, OK),
    admin=(OK, OK),
)
ADMIN_ONLY = row(*[(FORBIDDEN, FORBIDDEN)] * 5, admin=(OK, OK))

#: endpoint -> role -> (outcome on case A, outcome on case B)
MATRIX: dict[str, dict[str, tuple[Outcome, Outcome]]] = {
    "GET /health": EVERYONE,
    "GET /metrics": EVERYONE,
    "GET /openapi.json": EVERYONE,
    "GET /policies": ANY_TOKEN,
    # opening a case with the parties of A or B: an admin's (the integration names them)
    "POST /cases": row(*[(FORBIDDEN, FORBIDDEN)] * 5, admin=(CREATED, CREATED)),
    # opening a case whose only party is A's (or B's) consumer: that consumer may name itself,
    # but not supply the order's facts (only the integration may: the policy says so)
    "POST /cases consumer": row(
        merchant=(FORBIDDEN, FORBIDDEN),
        other_merchant=(FORBIDDEN, FORBIDDEN),
        consumer=(FACT_NOT_ALLOWED, FORBIDDEN),
        other_consumer=(FORBIDDEN, FACT_NOT_ALLOWED),
        platform=(FORBIDDEN, FORBIDDEN),  # an actor with no principal is no party to name
        admin=(CREATED, CREATED),
    ),
    # ... whose only party is A's (or B's) merchant
    "POST /cases merchant": row(
        merchant=(FACT_NOT_ALLOWED, FORBIDDEN),
        other_merchant=(FORBIDDEN, FACT_NOT_ALLOWED),
        consumer=(FORBIDDEN, FORBIDDEN),
        other_consumer=(FORBIDDEN, FORBIDDEN),
        platform=(FORBIDDEN, FORBIDDEN),
        admin=(CREATED, CREATED),
    ),
    "GET /cases": row(
        merchant=(LISTED, UNLISTED),
        other_merchant=(UNLISTED, LISTED),
        consumer=(LISTED, UNLISTED),
        other_consumer=(UNLISTED, LISTED),
        platform=(LISTED, LISTED),
        admin=(LISTED, LISTED),
    ),
    "GET /cases/{id}": SEES,
    "GET /cases/{id}/history": SEES,
    "GET /cases/{id}/explain": SEES,  # the same authorization as reading the case
    # escalate: sent by a consumer or a merchant
    "POST /cases/{id}/events escalate": row(
        merchant=(OK, HIDDEN),
        other_merchant=(HIDDEN, OK),
        consumer=(OK, HIDDEN),
        other_consumer=(HIDDEN, OK),
        platform=(ACTOR_NOT_ALLOWED, ACTOR_NOT_ALLOWED),
        admin=(FORBIDDEN, FORBIDDEN),  # an admin token has no actor to send as
    ),
    # approve: the merchant's only; a consumer that sees the case still may not send it
    "POST /cases/{id}/events approve": row(
        merchant=(OK, HIDDEN),
        other_merchant=(HIDDEN, OK),
        consumer=(ACTOR_NOT_ALLOWED, HIDDEN),
        other_consumer=(HIDDEN, ACTOR_NOT_ALLOWED),
        platform=(ACTOR_NOT_ALLOWED, ACTOR_NOT_ALLOWED),
        admin=(FORBIDDEN, FORBIDDEN),
    ),
    # withdraw: the consumer's only
    "POST /cases/{id}/events withdraw": row(
        merchant=(ACTOR_NOT_ALLOWED, HIDDEN),
        other_merchant=(HIDDEN, ACTOR_NOT_ALLOWED),
        consumer=(OK, HIDDEN),
        other_consumer=(HIDDEN, OK),
        platform=(ACTOR_NOT_ALLOWED, ACTOR_NOT_ALLOWED),
        admin=(FORBIDDEN, FORBIDDEN),
    ),
    # facts from outside: order.amount is the integration's (an admin's); a party asserting
    # it is refused by the policy; a caller that does not see the case gets 404 first
    "POST /cases/{id}/facts": row(
        merchant=(FACT_NOT_ALLOWED, HIDDEN),
        other_merchant=(HIDDEN, FACT_NOT_ALLOWED),
        consumer=(FACT_NOT_ALLOWED, HIDDEN),
        other_consumer=(HIDDEN, FACT_NOT_ALLOWED),
        platform=(FACT_NOT_ALLOWED, FACT_NOT_ALLOWED),
        admin=(OK, OK),
    ),
    # the outbox: an admin's (the case column is whose refund the request names)
    "POST /effects/claim": ADMIN_ONLY,
    "GET /effects": ADMIN_ONLY,
    "POST /effects/{key}/ack": ADMIN_ONLY,
    "POST /effects/{key}/fail": ADMIN_ONLY,
    "POST /effects/{key}/retry": ADMIN_ONLY,
    # moving cases to a later version: the operator's (here a dry run to the served version)
    "POST /policies/migrate": ADMIN_ONLY,
    # live rule changes: the operator's (impact of the served version on its own cases,
    # every case exported, an empty export imported)
    "POST /policies/impact": ADMIN_ONLY,
    "GET /cases/export": ADMIN_ONLY,
    "POST /cases/import": ADMIN_ONLY,
}


def test_the_matrix_covers_every_route_and_role(client: TestClient) -> None:
    routes = {
        f"{m.upper()} {p.replace('{case_id}', '{id}')}"
        for p, item in client.get("/openapi.json").json()["paths"].items()
        for m in item
    }
    assert {" ".join(endpoint.split()[:2]) for endpoint in MATRIX} == routes | {"GET /openapi.json"}
    for endpoint, cells in MATRIX.items():
        assert list(cells) == ROLES, endpoint


# -- the requests -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, kuaishou: Policy, tokens: Tokens
) -> Iterator[tuple[TestClient, SqlStore]]:
    """One store and client for the whole matrix: each cell opens fresh cases of its own."""
    store = open_store(tmp_path_factory.mktemp("authz") / "cases.db", migrate=True)
    with make_client(store, kuaishou, tokens) as c:
        yield c, store
    store.close()


def headers_of(role: str) -> dict[str, str]:
    if role == "no_token":
        return {}
    if role == "unknown_token":
        return {"Authorization": "Bearer not-a-token-anyone-was-given"}
    return {"Authorization": f"Bearer {TOKENS[role]}"}


Call = Callable[[TestClient, dict[str, str]], Any]


def request_for(endpoint: str, case_id: str, parties: dict[str, str], effect: str) -> Call:
    """The request of one matrix row, about one case (its id, parties and refund's key)."""
    path = {
        "GET /cases/{id}": f"/cases/{case_id}",
        "GET /cases/{id}/history": f"/cases/{case_id}/history",
        "GET /cases/{id}/explain": f"/cases/{case_id}/explain",
        "POST /cases/{id}/facts": f"/cases/{case_id}/facts",
        "POST /effects/{key}/ack": f"/effects/{effect}/ack",
        "POST /effects/{key}/fail": f"/effects/{effect}/fail",
        "POST /effects/{key}/retry": f"/effects/{effect}/retry",
    }
    if endpoint.startswith("POST /cases/{id}/events "):
        event = endpoint.split()[-1]
        return lambda c, h: c.post(f"/cases/{case_id}/events", json={"event": event}, headers=h)
    if endpoint == "POST /cases/import":
        return lambda c, h: c.post("/cases/import", content=b"", headers=h)
    if endpoint.startswith("POST /cases") and "{id}" not in endpoint:
        only = endpoint.split()[2:]  # the one party named, or all of them
        named = {a: p for a, p in parties.items() if not only or a in only}
        body = {"workflow": "refund_only", "facts": refund_facts(), "parties": named}
        return lambda c, h: c.post("/cases", json=body, headers=h)
    if endpoint == "POST /cases/{id}/facts":
        return lambda c, h: c.post(path[endpoint], json={"facts": {"order.amount": 499}}, headers=h)
    if endpoint == "POST /effects/claim":
        return lambda c, h: c.post("/effects/claim", json={"limit": 1}, headers=h)
    if endpoint == "POST /effects/{key}/fail":
        return lambda c, h: c.post(path[endpoint], json={"error": "bank down"}, headers=h)
    if endpoint == "GET /cases":
        # the page that starts at this case (ids sort; no other id starts with all but its end)
        page = {"after": case_id[:-1], "limit": 1}
        return lambda c, h: c.get("/cases", params=page, headers=h)
    if endpoint == "GET /effects":
        return lambda c, h: c.get("/effects", params={"case_id": case_id}, headers=h)
    if endpoint == "POST /policies/migrate":
        body = {"to": KUAISHOU_VERSION, "dry_run": True, "batch": 1000}
        return lambda c, h: c.post("/policies/migrate", json=body, headers=h)
    if endpoint == "POST /policies/impact":
        same = {"old": KUAISHOU_VERSION, "new": KUAISHOU_VERSION}
        return lambda c, h: c.post("/policies/impact", json=same, headers=h)
    method, route = endpoint.split()
    url = path.get(endpoint, route)
    return lambda c, h: c.request(method, url, headers=h)


CELLS = [
    (endpoint, role, which)
    for endpoint in MATRIX
    for role, which in itertools.product(ROLES, ("A", "B"))
]


@pytest.mark.parametrize(("endpoint", "role", "which"), CELLS, ids=[" ".join(c) for c in CELLS])
def test_authorization_matrix(
    shared: tuple[TestClient, SqlStore], endpoint: str, role: str, which: str
) -> None:
    client, store = shared
    expected = MATRIX[endpoint][role][0 if which == "A" else 1]
    parties = PARTIES_A if which == "A" else PARTIES_B
    case, _ = store.open("refund_only", refund_facts(), parties=parties)
    refund = store.open("refund_only", refund_facts(), parties=parties)[0].id
    store.send(refund, "approve", "merchant")
    effect = f"{refund}/1/0"
    if endpoint.endswith("/retry"):
        store.max_attempts = 1  # this store only, for a moment: one delivery, then dead
        try:
            store.claim(limit=1000)
            store.fail(effect, "bank down")  # dead: something to retry
        finally:
            del store.max_attempts
    call = request_for(
        endpoint, case.id if "/effects/" not in endpoint else refund, parties, effect
    )

    r = call(client, headers_of(role))

    if expected in (LISTED, UNLISTED):
        assert r.status_code == 200, r.text
        ids = {x["id"] for x in r.json()["cases"]}
        assert (case.id in ids) == (expected == LISTED)
        return
    if isinstance(expected, int):
        assert r.status_code == expected, r.text
        if endpoint.startswith("POST /cases/{id}/events"):
            # sent as the caller's actor, whatever the request says
            assert r.json()["records"][0]["actor"] == ACTOR[role]
        return
    assert error_of(r) == expected, r.text
    if expected == NOAUTH:
        assert r.headers["WWW-Authenticate"] == "Bearer"
    if expected == HIDDEN:
        # exactly what a case that never existed gets: nothing tells the two apart
        never = request_for(endpoint, "never-opened", parties, effect)(client, headers_of(role))
        assert r.status_code == never.status_code
        assert r.json()["detail"] == never.json()["detail"].replace("never-opened", case.id)


def test_an_event_is_sent_as_the_callers_actor_whatever_the_body_says(client: TestClient) -> None:
    case = client.post(
        "/cases",
        json={"workflow": "refund_only", "facts": refund_facts(), "parties": PARTIES_A},
        headers=headers_of("admin"),
    ).json()["case"]
    # an `actor` (or `by`) in the body is not a field of the request: refused, not obeyed
    r = client.post(
        f"/cases/{case['id']}/events",
        json={"event": "approve", "actor": "merchant", "by": "merchant"},
        headers=headers_of("consumer"),
    )
    assert error_of(r) == ACTOR_NOT_ALLOWED
    history = client.get(f"/cases/{case['id']}/history", headers=headers_of("admin")).json()[
        "records"
    ]
    assert [h["kind"] for h in history] == ["open"]


def test_a_principal_is_a_party_for_its_own_actor_only(
    sqlite_store: SqlStore, kuaishou: Policy
) -> None:
    # a merchant whose principal happens to be the case's consumer's name sees nothing
    dev = DevTokens(set(kuaishou.actors))
    with make_client(sqlite_store, kuaishou, dev) as c:
        r = c.post(
            "/cases",
            json={"workflow": "refund_only", "facts": refund_facts(), "parties": PARTIES_A},
            headers={"Authorization": "Bearer dev:admin"},
        )
        case_id = r.json()["case"]["id"]
        as_merchant = {"Authorization": "Bearer dev:merchant:user-1"}
        assert error_of(c.get(f"/cases/{case_id}", headers=as_merchant)) == HIDDEN
        assert c.get("/cases", headers=as_merchant).json()["cases"] == []
        r = c.post(
            "/cases",
            json={"workflow": "refund_only", "facts": refund_facts(), "parties": PARTIES_A},
            headers=as_merchant,
        )
        assert error_of(r) == FORBIDDEN


# -- tokens files --------------------------------------------------------------------------------
ACTORS = {"consumer", "merchant", "platform"}
GOOD = "a-token-of-16-chars"
DIGEST = hashlib.sha256(b"hashed-token-0123456").hexdigest()

#: a tokens file's data -> the message it is refused with (after "where: ")
BAD_TOKENS: list[tuple[Any, str]] = [
    (None, "expected a map with a `tokens` list"),
    ([], "expected a map with a `tokens` list"),
    ({"tokens": "all"}, "expected a map with a `tokens` list"),
    ({"tokens": []}, "the `tokens` list is empty"),
    ({"tokens": ["x"]}, "tokens[1]: expected a map (token, actor, principal, admin)"),
    ({"tokens": [{"token": GOOD, "admin": True, "role": "x"}]}, "tokens[1]: unknown key `role`"),
    ({"tokens": [{"admin": True}]}, "tokens[1]: give exactly one of `token` and `sha256`"),
    (
        {"tokens": [{"token": GOOD, "sha256": DIGEST, "admin": True}]},
        "tokens[1]: give exactly one of `token` and `sha256`",
    ),
    (
        {"tokens": [{"token": "short", "admin": True}]},
        "tokens[1]: a token must be a string of 16 characters or more",
    ),
    (
        {"tokens": [{"token": 1234567890123456789, "admin": True}]},
        "tokens[1]: a token must be a string of 16 characters or more",
    ),
    (
        {"tokens": [{"sha256": DIGEST.upper(), "admin": True}]},
        "tokens[1]: `sha256` must be 64 lowercase hex digits",
    ),
    (
        {"tokens": [{"sha256": DIGEST[:-1], "admin": True}]},
        "tokens[1]: `sha256` must be 64 lowercase hex digits",
    ),
    (
        {"tokens": [{"token": GOOD, "actor": "courier"}]},
        "tokens[1]: `courier` is not an actor of the served policies (consumer, merchant, platform)",
    ),
    (
        {"tokens": [{"token": GOOD, "actor": ["merchant"]}]},
        "tokens[1]: `['merchant']` is not an actor of the served policies (consumer, merchant, platform)",
    ),
    (
        {"tokens": [{"token": GOOD, "principal": "shop-1", "admin": True}]},
        "tokens[1]: a `principal` needs an `actor` (and must be a string)",
    ),
    (
        {"tokens": [{"token": GOOD, "actor": "merchant", "principal": 7}]},
        "tokens[1]: a `principal` needs an `actor` (and must be a string)",
    ),
    ({"tokens": [{"token": GOOD, "admin": "yes"}]}, "tokens[1]: `admin` must be true or false"),
    ({"tokens": [{"token": GOOD}]}, "tokens[1]: give an `actor`, or `admin: true`"),
    (
        {"tokens": [{"token": GOOD, "admin": True}, {"token": GOOD, "actor": "platform"}]},
        "tokens[2]: the same token appears twice",
    ),
    (
        {
            "tokens": [
                {"sha256": hashlib.sha256(GOOD.encode()).hexdigest(), "admin": True},
                {"token": GOOD, "actor": "platform"},
            ]
        },
        "tokens[2]: the same token appears twice",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_TOKENS, ids=[m for _, m in BAD_TOKENS])
def test_tokens_file_errors(data: Any, message: str) -> None:
    with pytest.raises(TokensError) as e:
        Tokens.parse(data, "tokens.yaml", ACTORS)
    assert str(e.value) == f"tokens.yaml: {message}"


def test_tokens_file_read_errors(tmp_path: Path) -> None:
    with pytest.raises(TokensError, match=r"missing\.yaml: cannot read the tokens file: "):
        Tokens.load(tmp_path / "missing.yaml", ACTORS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokens: [unclosed\n", encoding="utf-8")
    with pytest.raises(TokensError, match=r"bad\.yaml: not valid YAML: "):
        Tokens.load(bad, ACTORS)


def test_a_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        f"""
tokens:
  - token: "{GOOD}"
    actor: merchant
    principal: shop-1
  - sha256: "{DIGEST}"
    actor: consumer
    principal: user-7
    name: the app
  - token: "platform-token-0123"
    actor: platform
  - token: "admin-token-0123456"
    admin: true
""",
        encoding="utf-8",
    )
    tokens = Tokens.load(path, ACTORS)
    assert len(tokens) == 4
    assert tokens.caller(GOOD) == Caller("merchant:shop-1", "merchant", "shop-1")
    assert tokens.caller("hashed-token-0123456") == Caller("the app", "consumer", "user-7")
    assert tokens.caller("platform-token-0123") == Caller("platform", "platform")
    assert tokens.caller("admin-token-0123456") == Caller("admin", admin=True)
    assert tokens.caller(DIGEST) is None  # the digest is not itself a token
    assert tokens.caller(GOOD + " ") is None
    # without the served policies' actors, any actor name is accepted
    assert len(Tokens.parse(TOKENS_FILE, "t")) == len(TOKENS_FILE["tokens"])


def test_callers_rules() -> None:
    admin, platform = Caller("admin", admin=True), Caller("platform", "platform")
    merchant = Caller("m", "merchant", "shop-1")
    assert admin.sees({}) and admin.may_open(PARTIES_A) and admin.party is None
    assert platform.sees(PARTIES_B) and not platform.may_open({}) and platform.party is None
    assert merchant.sees(PARTIES_A) and not merchant.sees(PARTIES_B)
    assert not merchant.sees({}) and not merchant.may_open({"consumer": "shop-1"})
    # a caller names itself only: the other parties come from the integration
    assert merchant.may_open({"merchant": "shop-1"}) and not merchant.may_open(PARTIES_A)
    assert not merchant.may_open({})
    assert merchant.party == ("merchant", "shop-1")
    # whose idempotency keys: every admin token's are the integration's
    assert (admin.identity, platform.identity, merchant.identity) == (
        "admin",
        "platform",
        "merchant:shop-1",
    )
    assert not Caller("nobody").sees(PARTIES_A) and not Caller("nobody").may_open(PARTIES_A)


# -- development tokens ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "caller"),
    [
        ("dev:admin", Caller("admin", admin=True)),
        ("dev:merchant:shop-1", Caller("merchant:shop-1", "merchant", "shop-1")),
        ("dev:platform", Caller("platform", "platform")),
        ("dev:courier", None),  # not an actor of the policies
        ("dev:admin:x", None),
        ("dev:merchant:shop-1:extra", None),
        ("dev", None),
        ("merchant:shop-1", None),
        ("prod:admin", None),
        ("", None),
    ],
)
def test_dev_tokens(token: str, caller: Caller | None) -> None:
    dev = DevTokens(ACTORS)
    assert dev.caller(token) == caller
    assert len(dev) == 0


def test_dev_tokens_over_http(sqlite_store: SqlStore, kuaishou: Policy) -> None:
    with make_client(sqlite_store, kuaishou, DevTokens(set(kuaishou.actors))) as c:
        r = c.post(
            "/cases",
            json={"workflow": "refund_only", "facts": refund_facts(), "parties": PARTIES_A},
            headers={"Authorization": "Bearer dev:admin"},
        )
        assert r.status_code == 201
        case_id = r.json()["case"]["id"]
        r = c.post(
            f"/cases/{case_id}/events",
            json={"event": "approve"},
            headers={"Authorization": "Bearer dev:merchant:shop-1"},
        )
        assert r.status_code == 200 and r.json()["records"][0]["actor"] == "merchant"
        assert c.get("/effects", headers={"Authorization": "Bearer dev:admin"}).status_code == 200
        assert (
            error_of(c.get("/policies", headers={"Authorization": "Bearer dev:courier"})) == NOAUTH
        )
        assert (
            error_of(
                c.get(f"/cases/{case_id}", headers={"Authorization": "Bearer dev:consumer:user-2"})
            )
            == HIDDEN
        )
