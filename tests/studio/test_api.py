"""Every studio endpoint through the HTTP interface, on the shipped policy (docs/studio.md)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from .studio_support import FAST, OPENED, POLICY, SLOW, open_case, source

CITE_5 = "5. fast refund: judged on request, on resubmission, and whenever the facts change"
SCENARIO = f"""policy: ../{POLICY.name}
scenarios:
  - name: fast refund
    workflow: refund_only
    at: 2026-03-01T12:00:00+08:00
    facts: {{order: {{amount: 128.00, paid_at: 2026-03-01T10:00:00+08:00, shipped: false}},
            shop.fast_refund_enabled: true}}
    steps:
      - expect: {{state: refunded, effects: [refund]}}
  - name: wrong on purpose
    workflow: refund_only
    at: 2026-03-01T12:00:00+08:00
    facts: {{order: {{amount: 128.00, paid_at: 2026-03-01T10:00:00+08:00, shipped: false}},
            shop.fast_refund_enabled: true}}
    steps:
      - expect: {{state: rejected}}
"""


def test_files_lists_policies_and_scenarios(client: TestClient, folder: Path) -> None:
    (folder / "tests").mkdir()
    (folder / "tests" / "fast.yaml").write_text(SCENARIO, encoding="utf-8")
    (folder / "notes.yaml").write_text("a: 1\n", encoding="utf-8")
    assert client.get("/api/files").json() == {
        "roots": [str(folder.resolve())],
        "policies": [{"path": POLICY.name, "format": "rk"}],
        "scenarios": [{"path": "tests/fast.yaml", "policy": POLICY.name}],
    }


def test_a_file_is_read_with_its_etag_and_written_back(client: TestClient, folder: Path) -> None:
    data = POLICY.read_bytes()
    read = client.get("/api/file", params={"path": POLICY.name}).json()
    assert read == {
        "path": POLICY.name,
        "text": data.decode("utf-8"),
        "format": "rk",
        "etag": hashlib.sha256(data).hexdigest(),
    }
    changed = read["text"].replace('version "2023-01-31"', 'version "2023-02-01"')
    written = client.put(
        "/api/file", json={"path": POLICY.name, "text": changed, "etag": read["etag"]}
    )
    assert written.status_code == 200
    assert written.json() == {"etag": hashlib.sha256(changed.encode()).hexdigest()}
    assert (folder / POLICY.name).read_text(encoding="utf-8") == changed
    # no temporary file is left beside it
    assert sorted(p.name for p in folder.iterdir()) == [POLICY.name]


def test_a_file_changed_on_disk_is_not_overwritten_unless_asked(
    client: TestClient, folder: Path
) -> None:
    read = client.get("/api/file", params={"path": POLICY.name}).json()
    (folder / POLICY.name).write_text("// changed elsewhere\n", encoding="utf-8")
    refused = client.put("/api/file", json={"path": POLICY.name, "text": "x", "etag": read["etag"]})
    assert refused.status_code == 409
    body = refused.json()
    assert (body["code"], body["status"], body["etag"]) == (
        "changed_on_disk",
        409,
        hashlib.sha256(b"// changed elsewhere\n").hexdigest(),
    )
    assert (folder / POLICY.name).read_text(encoding="utf-8") == "// changed elsewhere\n"
    forced = client.put("/api/file", json={"path": POLICY.name, "text": "x", "etag": None})
    assert forced.status_code == 200
    assert (folder / POLICY.name).read_text(encoding="utf-8") == "x"


def test_a_new_file_is_created_with_a_null_etag(client: TestClient, folder: Path) -> None:
    made = client.put("/api/file", json={"path": "new.rk", "text": "// new\n", "etag": None})
    assert made.status_code == 200
    assert (folder / "new.rk").read_text(encoding="utf-8") == "// new\n"


def test_check_describes_the_policy(client: TestClient) -> None:
    answer = client.post("/api/check", json=source()).json()
    assert (answer["ok"], answer["diagnostics"]) == (True, [])
    model = answer["policy"]
    assert (model["name"], model["version"], model["zone"]) == (
        "kuaishou.after_sales",
        "2023-01-31",
        "Asia/Shanghai",
    )
    assert len(model["hash"]) >= 32
    assert model["actors"] == ["consumer", "merchant", "platform"]
    refund_only = model["workflows"][0]
    assert (refund_only["name"], refund_only["initial"]) == ("refund_only", "awaiting_merchant")
    assert refund_only["states"][0] == {
        "name": "awaiting_merchant",
        "final": False,
        "line": 106,
        "column": 3,
    }
    facts = {f["path"]: f for f in model["facts"]}
    assert facts["order.amount"] == {
        "path": "order.amount",
        "type": "money",
        "optional": False,
        "enum": None,
        "doc": None,
        "by": [],
    }
    assert facts["order.paid_at"]["type"] == "timestamp"
    assert facts["offer.service"]["enum"] == ["exchange", "repair"]
    assert facts["offer.service"]["optional"] is True
    events = {e["name"]: e for e in model["events"]}
    assert events["request_evidence"] == {
        "name": "request_evidence",
        "by": ["platform"],
        "payload": [
            {"name": "party", "type": "Party", "optional": False, "enum": ["consumer", "merchant"]},
            {"name": "within", "type": "duration", "optional": False, "enum": None},
        ],
    }


def test_check_reports_errors_with_their_codes_and_no_policy(client: TestClient) -> None:
    text = POLICY.read_text(encoding="utf-8").replace(
        '-> refunded emit refund(amount: order.amount) cite "1. the merchant approves"',
        '-> refundedd emit refund(amount: order.amount) cite "1. the merchant approves"',
    )
    answer = client.post("/api/check", json=source(text=text)).json()
    assert answer["ok"] is False
    assert answer["policy"] is None
    [error] = [d for d in answer["diagnostics"] if d["severity"] == "error"]
    assert error["message"].startswith("unknown state") or "refundedd" in error["message"]
    assert error["code"].startswith("RK")
    assert error["rendered"].startswith(f"{POLICY.name}:{error['line']}:{error['column']}")
    assert "^" in error["rendered"]


def test_graph_carries_the_ids_in_the_dot(client: TestClient) -> None:
    answer = client.post("/api/graph", json=source(workflow="refund_only")).json()
    nodes = {n["state"]: n for n in answer["nodes"]}
    assert nodes["awaiting_merchant"] == {
        "id": "n:refund_only:awaiting_merchant",
        "state": "awaiting_merchant",
        "line": 106,
        "column": 3,
    }
    edges = {e["id"]: e for e in answer["edges"]}
    assert edges["e:refund_only:awaiting_merchant:0"] == {
        "id": "e:refund_only:awaiting_merchant:0",
        "from": "awaiting_merchant",
        "to": "refunded",
        "kind": "auto",
        "label": "when shop.fast_refund_enabled and since(order.paid_at) <= FAST_R… — "
        "5. fast refund: judged on request, on resubmission, and whe…",
        "line": 107,
        "column": 5,
        "cite": CITE_5,
    }
    deadline = edges["e:refund_only:awaiting_merchant:3"]
    assert (deadline["kind"], deadline["to"]) == ("deadline", "refunded")
    assert deadline["label"].startswith("after REVIEW_WINDOW")
    for id in [*nodes.values(), *edges.values()]:
        assert f'id="{id["id"]}"' in answer["dot"]
    assert answer["dot"].startswith("digraph rulekit {")


def test_graph_of_an_unknown_workflow_is_a_problem(client: TestClient) -> None:
    answer = client.post("/api/graph", json=source(workflow="nope"))
    assert answer.status_code == 422
    assert answer.json()["code"] == "unknown_workflow"


def test_a_fast_refund_is_refunded_citing_clause_5(client: TestClient) -> None:
    sim = open_case(client, FAST)
    assert (sim["state"], sim["final"], sim["now"]) == ("refunded", True, OPENED)
    assert sim["effects"] == [{"name": "refund", "args": {"amount": "128.00"}}]
    assert (sim["allowed"], sim["deadlines"], sim["refused"]) == ({}, [], None)
    opened, refunded = sim["timeline"]
    assert opened == {
        "at": OPENED,
        "kind": "open",
        "text": "2026-03-01 12:00:00+08:00  opened refund_only in `awaiting_merchant`",
        "from": None,
        "to": "awaiting_merchant",
        "edge": None,
        "cite": None,
        "conditions": [],
    }
    assert refunded["kind"] == "auto"
    assert (refunded["from"], refunded["to"], refunded["cite"]) == (
        "awaiting_merchant",
        "refunded",
        CITE_5,
    )
    assert refunded["edge"] == "e:refund_only:awaiting_merchant:0"
    assert f'cite "{CITE_5}"' in refunded["text"]
    [condition] = refunded["conditions"]
    assert condition["held"] is True
    assert condition["text"].startswith("shop.fast_refund_enabled and since(order.paid_at)")
    assert "order.amount = 128.00" in condition["value"]
    assert client.get(f"/api/sim/{sim['id']}").json() == sim


def test_reject_by_the_merchant_then_escalate_by_the_consumer(client: TestClient) -> None:
    sim = open_case(client, SLOW)
    assert sim["state"] == "awaiting_merchant"
    assert sim["allowed"] == {
        "merchant": [
            {"event": "approve", "payload": []},
            {
                "event": "reject",
                "payload": [{"name": "reason", "type": "string", "optional": False, "enum": None}],
            },
            {"event": "escalate", "payload": []},
        ],
        "consumer": [{"event": "withdraw", "payload": []}, {"event": "escalate", "payload": []}],
    }
    assert sim["deadlines"] == [
        {
            "name": "REVIEW_WINDOW",
            "due": "2026-03-03T12:00:00+08:00",
            "to": "refunded",
            "edge": "e:refund_only:awaiting_merchant:3",
        }
    ]
    id = sim["id"]
    rejected = client.post(
        f"/api/sim/{id}/send",
        json={"event": "reject", "by": "merchant", "payload": {"reason": "used"}},
    ).json()
    assert (rejected["state"], rejected["refused"]) == ("merchant_rejected", None)
    assert rejected["facts"]["rejection"] == {"reason": "used"}
    assert rejected["timeline"][-1]["edge"] == "e:refund_only:awaiting_merchant:2"
    assert rejected["timeline"][-1]["text"].startswith(
        '2026-03-01 12:00:00+08:00  reject by merchant (reason: "used"): '
        "`awaiting_merchant` -> `merchant_rejected`"
    )
    escalated = client.post(
        f"/api/sim/{id}/send", json={"event": "escalate", "by": "consumer", "payload": {}}
    ).json()
    assert escalated["state"] == "platform_review"
    assert (
        escalated["timeline"][-1]["cite"]
        == "4. either party may escalate while the request is open"
    )
    assert escalated["timeline"][-1]["edge"] is not None
    # a refusal leaves the case as it was and says why
    refused = client.post(f"/api/sim/{id}/send", json={"event": "approve", "by": "merchant"}).json()
    assert refused["refused"] == {
        "code": "event_not_allowed",
        "message": "`approve` is not taken in state `platform_review`",
    }
    assert refused["timeline"] == escalated["timeline"]
    assert refused["state"] == "platform_review"


def test_advancing_48h_and_past_fires_the_deadline_at_its_due_time(client: TestClient) -> None:
    id = open_case(client, SLOW)["id"]
    waited = client.post(f"/api/sim/{id}/advance", json={"by": "48h"}).json()
    # "within 48h" includes the 48th hour: the merchant is still in time
    assert (waited["state"], waited["now"]) == ("awaiting_merchant", "2026-03-03T12:00:00+08:00")
    past = client.post(f"/api/sim/{id}/advance", json={"by": "1h"}).json()
    assert (past["state"], past["now"]) == ("refunded", "2026-03-03T13:00:00+08:00")
    fired = past["timeline"][-1]
    assert (fired["kind"], fired["at"], fired["edge"]) == (
        "deadline",
        "2026-03-03T12:00:00+08:00",
        "e:refund_only:awaiting_merchant:3",
    )
    assert fired["cite"] == "1. 48h passed without the merchant: the system approves and refunds"
    assert past["effects"] == [{"name": "refund", "args": {"amount": "500"}}]


def test_advancing_to_the_next_deadline_or_a_time(client: TestClient) -> None:
    id = open_case(client, SLOW)["id"]
    to = client.post(f"/api/sim/{id}/advance", json={"to": "2026-03-02T12:00:00+08:00"}).json()
    assert (to["state"], to["now"]) == ("awaiting_merchant", "2026-03-02T12:00:00+08:00")
    nxt = client.post(f"/api/sim/{id}/advance", json={"next_deadline": True}).json()
    assert (nxt["state"], nxt["now"]) == ("refunded", "2026-03-03T12:00:01+08:00")
    assert nxt["timeline"][-1]["at"] == "2026-03-03T12:00:00+08:00"
    none_left = client.post(f"/api/sim/{id}/advance", json={"next_deadline": True})
    assert (none_left.status_code, none_left.json()["code"]) == (422, "invalid_request")
    back = client.post(f"/api/sim/{id}/advance", json={"to": OPENED})
    assert (back.status_code, back.json()["code"]) == (422, "invalid_request")


def test_advance_takes_exactly_one_way(client: TestClient) -> None:
    id = open_case(client, SLOW)["id"]
    for body in ({}, {"by": "1h", "to": OPENED}, {"next_deadline": False}):
        answer = client.post(f"/api/sim/{id}/advance", json=body)
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_request"), body


def test_opening_with_bad_facts_is_the_engines_refusal(client: TestClient) -> None:
    answer = client.post(
        "/api/sim",
        json=source(workflow="refund_only", facts={"order": {"amount": 1}}, at=OPENED),
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_fact"
    assert "missing" in answer.json()["detail"]
    not_by_the_consumer = client.post(
        "/api/sim", json=source(workflow="refund_only", facts=SLOW, at=OPENED, by="consumer")
    )
    assert not_by_the_consumer.status_code == 422
    assert not_by_the_consumer.json()["code"] == "fact_not_allowed"
    too_many = client.post(
        "/api/sim",
        json=source(workflow="refund_only", facts={f"x{i}": 1 for i in range(1001)}, at=OPENED),
    )
    assert (too_many.status_code, too_many.json()["code"]) == (422, "invalid_request")
    no_offset = client.post(
        "/api/sim", json=source(workflow="refund_only", facts=SLOW, at="2026-03-01T12:00:00")
    )
    assert (no_offset.status_code, no_offset.json()["code"]) == (422, "invalid_request")


def test_an_unknown_simulation_is_404(client: TestClient) -> None:
    answer = client.get("/api/sim/nope")
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")


def _played(client: TestClient) -> str:
    """A simulation with a refusal, an escalation and a ruling; its id."""
    id: str = open_case(client, SLOW)["id"]
    for event, by, payload in (
        ("reject", "merchant", {"reason": "used"}),
        ("approve", "merchant", {}),  # refused
        ("escalate", "consumer", {}),
        ("rule", "platform", {"decision": "refund"}),
    ):
        client.post(f"/api/sim/{id}/send", json={"event": event, "by": by, "payload": payload})
    return id


def test_the_exported_scenario_passes_rulekit_test(client: TestClient, folder: Path) -> None:
    id = _played(client)
    exported = client.get(f"/api/sim/{id}/scenario").json()
    assert exported["filename"] == "kuaishou_after_sales.refund_only.scenarios.yaml"
    document = yaml.safe_load(exported["yaml"])
    assert document["policy"] == POLICY.name
    [scenario] = document["scenarios"]
    assert scenario["workflow"] == "refund_only"
    assert scenario["steps"][1:5] == [
        {"send": {"event": "reject", "by": "merchant", "data": {"reason": "used"}}},
        {
            "expect": {
                "state": "merchant_rejected",
                "effects": [],
                "deadline": {"at": "2026-03-08T12:00:00+08:00"},
            }
        },
        {"send": {"event": "approve", "by": "merchant"}, "expect_error": "event_not_allowed"},
        {"send": {"event": "escalate", "by": "consumer"}},
    ]
    assert scenario["steps"][-1] == {
        "expect": {
            "state": "refunded",
            "final": True,
            "outcome": "refunded",
            "effects": [{"refund": {"amount": "500"}}],
            "deadline": None,
        }
    }
    (folder / exported["filename"]).write_text(exported["yaml"], encoding="utf-8")
    assert _rulekit_test(folder / exported["filename"]) == 0


def test_saving_a_scenario_under_the_roots(client: TestClient, folder: Path) -> None:
    id = _played(client)
    saved = client.post(f"/api/sim/{id}/scenario", json={"path": "tests/played.yaml"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["path"] == "tests/played.yaml"
    written = folder / "tests" / "played.yaml"
    assert yaml.safe_load(written.read_text(encoding="utf-8"))["policy"] == f"../{POLICY.name}"
    assert _rulekit_test(written) == 0
    again = client.post(f"/api/sim/{id}/scenario", json={"path": "tests/played.yaml"})
    assert (again.status_code, again.json()["code"]) == (409, "exists")
    forced = client.post(
        f"/api/sim/{id}/scenario", json={"path": "tests/played.yaml", "overwrite": True}
    )
    assert forced.status_code == 200


def _rulekit_test(path: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "rulekit.cli", "test", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.returncode


def test_running_scenarios_reports_passes_and_failures(client: TestClient, folder: Path) -> None:
    (folder / "tests").mkdir()
    (folder / "tests" / "fast.yaml").write_text(SCENARIO, encoding="utf-8")
    answer = client.post("/api/scenarios/run", json={"paths": ["tests"]}).json()
    assert (answer["passed"], answer["failed"]) == (1, 1)
    ok, failed = answer["results"]
    assert ok == {
        "file": "tests/fast.yaml",
        "name": "fast refund",
        "passed": True,
        "message": None,
        "timeline": [],
    }
    assert (failed["name"], failed["passed"]) == ("wrong on purpose", False)
    assert "rejected" in failed["message"]
    assert [(e["kind"], e["to"], e["edge"]) for e in failed["timeline"]] == [
        ("open", "awaiting_merchant", None),
        ("auto", "refunded", "e:refund_only:awaiting_merchant:0"),
    ]
    assert failed["timeline"][1]["cite"] == CITE_5


REVIEW = "after REVIEW_WINDOW -> refunded emit refund(amount: order.amount)"


def _changed_version() -> str:
    """The shipped policy with refund-only's review window cut to 24h and the consumer's
    withdrawal from review removed (a breaking change)."""
    text = POLICY.read_text(encoding="utf-8")
    assert text.count(REVIEW) == 1
    text = text.replace(REVIEW, "after 24h -> refunded emit refund(amount: order.amount)")
    withdraw = '    on withdraw -> withdrawn cite "1. the consumer withdraws"\n'
    assert text.count(withdraw) == 1
    return text.replace(withdraw, "")


def test_diff_of_two_versions_marks_the_changed_edge(client: TestClient) -> None:
    answer: dict[str, Any] = client.post(
        "/api/diff",
        json={
            "old": {"path": POLICY.name},
            "new": {"text": _changed_version(), "format": "rk"},
            "workflow": "refund_only",
        },
    ).json()
    assert answer["breaking"] is True
    assert answer["changed"] == ["e:refund_only:awaiting_merchant:3"]
    assert answer["added"] == []
    assert answer["removed"] == ["old:e:refund_only:awaiting_merchant:4"]
    assert answer["graph"]["removed_edges"] == [
        {
            "from": "awaiting_merchant",
            "to": "withdrawn",
            "label": "withdraw by consumer — 1. the consumer withdraws",
        }
    ]
    changes = [c for c in answer["changes"] if c["workflow"] == "refund_only"]
    assert changes == [
        {
            "kind": "state",
            "breaking": True,
            "text": "BREAKING refund_only.awaiting_merchant: removed: on withdraw -> withdrawn",
            "workflow": "refund_only",
            "edge": "old:e:refund_only:awaiting_merchant:4",
            "state": "awaiting_merchant",
        },
        {
            "kind": "state",
            "breaking": False,
            "text": "refund_only.awaiting_merchant: deadline REVIEW_WINDOW -> 24h",
            "workflow": "refund_only",
            "edge": "e:refund_only:awaiting_merchant:3",
            "state": "awaiting_merchant",
        },
    ]
    assert 'id="e:refund_only:awaiting_merchant:3"' in answer["graph"]["dot"]


def test_diff_reads_a_git_revision(client: TestClient, folder: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=folder,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", POLICY.name)
    git("commit", "-qm", "shipped")
    (folder / POLICY.name).write_text(_changed_version(), encoding="utf-8")
    answer = client.post(
        "/api/diff",
        json={"old": {"git": "HEAD", "path": POLICY.name}, "new": {"path": POLICY.name}},
    ).json()
    assert answer["changed"] == ["e:refund_only:awaiting_merchant:3"]
    assert answer["breaking"] is True
    for rev in ("--output=/tmp/x", "HEAD:../secret.rk"):
        refused = client.post(
            "/api/diff",
            json={"old": {"git": rev, "path": POLICY.name}, "new": {"path": POLICY.name}},
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request"), rev


def test_an_exported_simulation_through_a_deadline_passes(client: TestClient, folder: Path) -> None:
    id = open_case(client, SLOW)["id"]
    client.post(f"/api/sim/{id}/advance", json={"by": "48h"})
    client.post(f"/api/sim/{id}/advance", json={"next_deadline": True})
    exported = client.get(f"/api/sim/{id}/scenario").json()
    steps = yaml.safe_load(exported["yaml"])["scenarios"][0]["steps"]
    assert [next(iter(step)) for step in steps] == [
        "expect",
        "advance",
        "expect",
        "until",
        "expect",
    ]
    assert steps[1] == {"advance": "48h"}
    assert steps[3] == {"until": "2026-03-03T12:00:01+08:00"}
    (folder / exported["filename"]).write_text(exported["yaml"], encoding="utf-8")
    _rulekit_test(folder / exported["filename"])


def test_the_yaml_form_is_checked_and_compared_like_the_rk_form(client: TestClient) -> None:
    yaml_form = POLICY.with_suffix(".yaml")
    text = yaml_form.read_text(encoding="utf-8")
    checked = client.post(
        "/api/check", json={"text": text, "format": "yaml", "path": yaml_form.name}
    ).json()
    rk = client.post("/api/check", json=source()).json()
    assert checked["ok"] is True
    assert checked["policy"]["hash"] == rk["policy"]["hash"]
    same = client.post(
        "/api/diff",
        json={"old": {"text": text, "format": "yaml"}, "new": {"path": POLICY.name}},
    ).json()
    assert (same["changes"], same["breaking"], same["changed"]) == ([], False, [])
