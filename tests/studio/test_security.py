"""Attacks on the studio, each a test: it serves files to a browser page, so a page from
another site, a path out of the roots or an oversized request must get nowhere."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rulekit.studio import files as fs
from rulekit.studio.app import with_token
from rulekit.studio.gate import MAX_BODY
from rulekit.studio.sims import MAX_SESSIONS

from .studio_support import BASE, POLICY, PORT, SLOW, TOKEN, make_client, open_case, source


def test_the_page_holds_the_token_and_needs_none(client: TestClient) -> None:
    page = TestClient(client.app, base_url=BASE).get("/")
    assert page.status_code == 200
    assert f'<meta name="rulekit-studio-token" content="{TOKEN}">' in page.text
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("page", "served"),
    [
        (
            '<head><meta name="rulekit-studio-token" content=""></head>',
            f'<head><meta name="rulekit-studio-token" content="{TOKEN}"></head>',
        ),
        (
            '<html><head lang="en"><title>t</title></head>',
            f'<html><head lang="en"><meta name="rulekit-studio-token" content="{TOKEN}">'
            "<title>t</title></head>",
        ),
    ],
)
def test_the_token_goes_into_whatever_page_the_build_made(page: str, served: str) -> None:
    assert with_token(page, TOKEN) == served


@pytest.mark.parametrize("headers", [{}, {"X-Rulekit-Studio-Token": "guess"}])
def test_an_api_call_without_the_token_is_refused(folder: Path, headers: dict[str, str]) -> None:
    client = TestClient(make_client(folder).app, base_url=BASE, headers=headers)
    for answer in (
        client.get("/api/files"),
        client.get("/api/file", params={"path": POLICY.name}),
        client.put("/api/file", json={"path": POLICY.name, "text": "x", "etag": None}),
    ):
        assert answer.status_code == 403
        assert answer.json()["code"] == "bad_token"
        assert answer.headers["content-type"] == "application/problem+json"
    assert (folder / POLICY.name).read_text(encoding="utf-8") != "x"


@pytest.mark.parametrize(
    "host", ["evil.example:8765", "evil.example", f"127.0.0.1:{PORT + 1}", "127.0.0.1", ""]
)
def test_a_request_for_another_host_is_refused(client: TestClient, host: str) -> None:
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends its
    own name in Host (and could read the page's token, if the page were served to it)."""
    for path in ("/", "/api/files"):
        answer = client.get(path, headers={"Host": host})
        assert answer.status_code == 403, (path, host)
        assert answer.json()["code"] == "forbidden_host"


@pytest.mark.parametrize("host", [f"localhost:{PORT}", f"127.0.0.1:{PORT}"])
def test_localhost_names_are_accepted(client: TestClient, host: str) -> None:
    assert client.get("/api/files", headers={"Host": host}).status_code == 200


def _outside(tmp_path: Path) -> list[str]:
    """Paths that lead out of the root ``tmp_path/policies``."""
    (tmp_path / "secret.rk").write_text("// secret\n", encoding="utf-8")
    os.symlink(tmp_path / "secret.rk", tmp_path / "policies" / "link.rk")
    os.symlink(tmp_path, tmp_path / "policies" / "up")
    return [
        "../secret.rk",
        "sub/../../secret.rk",
        str(tmp_path / "secret.rk"),
        "/etc/passwd",
        "link.rk",
        "up/secret.rk",
        "",
        "a\x00b",
    ]


def test_no_file_outside_the_roots_can_be_read(client: TestClient, tmp_path: Path) -> None:
    for path in _outside(tmp_path):
        answer = client.get("/api/file", params={"path": path})
        assert answer.status_code in (403, 422), path
        assert answer.json()["code"] in ("outside_roots", "invalid_request"), path
        assert "// secret" not in answer.text


def test_no_file_outside_the_roots_can_be_written(client: TestClient, tmp_path: Path) -> None:
    for path in _outside(tmp_path):
        answer = client.put("/api/file", json={"path": path, "text": "pwned", "etag": None})
        assert answer.status_code == 403, path
        assert answer.json()["code"] == "outside_roots"
    assert (tmp_path / "secret.rk").read_text(encoding="utf-8") == "// secret\n"
    assert not any(
        "pwned" in p.read_text("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()
    )


def test_no_scenario_is_saved_or_run_outside_the_roots(client: TestClient, tmp_path: Path) -> None:
    id = open_case(client, SLOW)["id"]
    for path in _outside(tmp_path):
        saved = client.post(f"/api/sim/{id}/scenario", json={"path": path, "overwrite": True})
        assert (saved.status_code, saved.json()["code"]) == (403, "outside_roots"), path
        ran = client.post("/api/scenarios/run", json={"paths": [path]})
        assert (ran.status_code, ran.json()["code"]) == (403, "outside_roots"), path
        compared = client.post(
            "/api/diff", json={"old": {"path": path}, "new": {"path": POLICY.name}}
        )
        assert (compared.status_code, compared.json()["code"]) == (403, "outside_roots"), path
    assert (tmp_path / "secret.rk").read_text(encoding="utf-8") == "// secret\n"


def test_the_listing_leaves_out_symlinks_that_lead_out(client: TestClient, tmp_path: Path) -> None:
    _outside(tmp_path)
    listed = client.get("/api/files").json()
    assert listed["policies"] == [{"path": POLICY.name, "format": "rk"}]


def test_assets_stay_in_their_folder(client: TestClient) -> None:
    for path in ("/assets/../index.html", "/assets/..%2f..%2fapp.py", "/assets/%2e%2e/app.py"):
        answer = client.get(path)
        assert answer.status_code == 404, path


def test_a_body_over_the_cap_is_refused_unread(client: TestClient, folder: Path) -> None:
    big = "x" * (MAX_BODY + 1)
    answer = client.put("/api/file", json={"path": POLICY.name, "text": big, "etag": None})
    assert (answer.status_code, answer.json()["code"]) == (413, "payload_too_large")
    assert (folder / POLICY.name).read_bytes() == POLICY.read_bytes()


def test_sessions_are_capped_the_oldest_dropped(client: TestClient) -> None:
    first = open_case(client, SLOW)["id"]
    second = open_case(client, SLOW)["id"]
    for _ in range(MAX_SESSIONS - 1):
        open_case(client, SLOW)
    assert client.get(f"/api/sim/{first}").status_code == 404
    assert client.get(f"/api/sim/{second}").status_code == 200


def test_a_hostile_policy_is_diagnosed_quickly_not_crashed(client: TestClient) -> None:
    deep = "(" * 5000 + "true" + ")" * 5000
    texts = [
        "policy x\n" + "facts {\n" + "".join(f"  f{i}: int\n" for i in range(3000)) + "}\n",
        f"policy x\nworkflow w {{ initial state a {{ when {deep} -> a }} }}\n",
        "\x00\ufeff" * 1000,
        "policy " + "a." * 20000,
    ]
    for text in texts:
        started = time.monotonic()
        answer = client.post("/api/check", json=source(text=text))
        assert answer.status_code == 200, answer.text[:200]
        assert time.monotonic() - started < 10
        graph = client.post("/api/graph", json=source(text=text))
        assert graph.status_code == 422
        assert graph.json()["code"] in ("invalid_policy", "unknown_workflow")


def test_only_policy_and_scenario_files_are_read_or_written(
    client: TestClient, folder: Path
) -> None:
    """Not `.git/hooks/pre-commit` (code git runs), not `.env`, not a script: a page that
    got the token still could not plant code or read secrets through the studio."""
    (folder / ".git" / "hooks").mkdir(parents=True)
    (folder / ".env").write_text("SECRET=1\n", encoding="utf-8")
    (folder / ".hidden.yaml").write_text("a: 1\n", encoding="utf-8")
    for path in (".git/hooks/pre-commit", ".env", "run.sh", ".hidden.yaml", ".git/x.rk"):
        read = client.get("/api/file", params={"path": path})
        assert (read.status_code, read.json()["code"]) == (403, "not_editable"), path
        written = client.put("/api/file", json={"path": path, "text": "pwned", "etag": None})
        assert (written.status_code, written.json()["code"]) == (403, "not_editable"), path
    assert not (folder / ".git" / "hooks" / "pre-commit").exists()
    assert not (folder / "run.sh").exists()
    id = open_case(client, SLOW)["id"]
    saved = client.post(f"/api/sim/{id}/scenario", json={"path": ".git/hooks/post-checkout"})
    assert (saved.status_code, saved.json()["code"]) == (403, "not_editable")


def test_a_huge_file_is_not_read(client: TestClient, folder: Path) -> None:
    with (folder / "huge.yaml").open("wb") as f:
        f.truncate(fs.MAX_FILE + 1)
    answer = client.get("/api/file", params={"path": "huge.yaml"})
    assert (answer.status_code, answer.json()["code"]) == (413, "payload_too_large")
