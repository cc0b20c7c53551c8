"""``rulekit lsp`` driven over stdio in a subprocess, as an editor drives it (pytest-lsp).

One server answers the module's tests (each start costs about half a second): the
shipped policy and copies of it are opened under their own URIs, and every answer
is compared with what is expected exactly (tables of position -> answer).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from rulekit.analysis import check_source
from rulekit.tools.formatter import format_checked

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
TEXT = POLICY.read_text(encoding="utf-8")
SERVER = [sys.executable, "-m", "rulekit.cli", "lsp"]

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    yield
    await lsp_client.shutdown_session()


async def _published(client: LanguageClient, uri: str, send: object) -> list[types.Diagnostic]:
    """Send a notification (``send()``) and wait for the diagnostics it makes the server
    publish for ``uri``."""
    client.diagnostics.pop(uri, None)
    send()  # type: ignore[operator]
    for _ in range(500):
        if uri in client.diagnostics:
            return list(client.diagnostics[uri])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no diagnostics published for {uri}")


def _open(client: LanguageClient, path: Path, text: str, language: str = "rulekit") -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text))
    )
    return uri


def _expected(text: str, path: Path) -> list[tuple[str, str, int, tuple[int, int, int, int], str]]:
    """check_source's diagnostics as (code, severity, LSP severity, range, message)."""
    fmt = "yaml" if path.suffix in (".yaml", ".yml") else "rk"
    out = []
    for d in check_source(text, fmt, str(path)).diagnostics:
        message = d.message + "".join(f"\nnote: {n}" for n in d.notes)
        message += f"\nhelp: {d.help}" if d.help else ""
        sev = {"error": 1, "warning": 2, "info": 3}[d.severity]
        rng = (d.line - 1, d.column - 1, d.end_line - 1, d.end_column - 1)
        out.append((d.code, d.severity, sev, rng, message))
    return out


def _got(diags: list[types.Diagnostic]) -> list[tuple[str, str, int, tuple[int, int, int, int], str]]:
    sev_name = {1: "error", 2: "warning", 3: "info"}
    return [
        (
            str(d.code),
            sev_name[int(d.severity or 0)],
            int(d.severity or 0),
            (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character),
            d.message,
        )
        for d in diags
    ]


def _pos(text: str, needle: str, delta: int = 0) -> types.Position:
    """The position of ``delta`` characters into the first occurrence of ``needle``."""
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    return types.Position(line, offset - (text.rfind("\n", 0, offset) + 1))


def _span(text: str, needle: str, start: int = 0) -> tuple[int, int, int, int]:
    """The range of the first occurrence of ``needle`` at or after offset ``start``."""
    offset = text.index(needle, start)
    a, b = _pos(text[: offset + len(needle)] , needle if False else text[offset:offset+len(needle)]), None
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return (line, col, line, col + len(needle))


def _range(r: types.Range) -> tuple[int, int, int, int]:
    return (r.start.line, r.start.character, r.end.line, r.end.character)


# -- diagnostics -------------------------------------------------------------------------------

BROKEN = TEXT.replace("-> merchant_rejected set rejection.reason", "-> merchant_rejectd set rejection.reason", 1)
WARNS = TEXT.replace("  final state withdrawn\n  use rejection\n  use dispute\n}\n\nworkflow return_refund", "  final state withdrawn\n  state orphan\n  use rejection\n  use dispute\n}\n\nworkflow return_refund", 1)


async def test_diagnostics_as_check_reports_them(client: LanguageClient, tmp_path: Path) -> None:
    assert await _published(client, POLICY.as_uri(), lambda: _open(client, POLICY, TEXT)) == []
    broken = tmp_path / "broken.rk"
    uri = broken.as_uri()
    got = await _published(client, uri, lambda: _open(client, broken, BROKEN))
    assert _got(got) == _expected(BROKEN, broken)
    assert [d[0] for d in _got(got)] == ["RK0302"]
    # a fix typed in: checked again after the pause, and the diagnostics are cleared
    fix = types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [types.TextDocumentContentChangeWholeDocument(TEXT)],
    )
    assert await _published(client, uri, lambda: client.text_document_did_change(fix)) == []
    # warnings too, with their help lines
    warns = tmp_path / "warns.rk"
    got = await _published(client, warns.as_uri(), lambda: _open(client, warns, WARNS))
    assert _got(got) == _expected(WARNS, warns)
    assert {d[1] for d in _got(got)} == {"warning"}
    closed = types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(warns.as_uri()))
    assert await _published(client, warns.as_uri(), lambda: client.text_document_did_close(closed)) == []


async def test_debounced_while_typing(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "typing.rk"
    uri = path.as_uri()
    await _published(client, uri, lambda: _open(client, path, TEXT))
    client.diagnostics.pop(uri, None)
    for version, text in enumerate((BROKEN, TEXT + "garbage", BROKEN), start=2):
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [types.TextDocumentContentChangeWholeDocument(text)],
            )
        )
    await asyncio.sleep(0.1)
    assert uri not in client.diagnostics  # nothing while typing goes on
    for _ in range(200):
        if uri in client.diagnostics:
            break
        await asyncio.sleep(0.02)
    assert _got(list(client.diagnostics[uri])) == _expected(BROKEN, path)  # only the last text


async def test_yaml_policy_and_scenario_file(client: LanguageClient) -> None:
    sla = ROOT / "examples" / "support_sla" / "support_sla.yaml"
    text = sla.read_text(encoding="utf-8")
    broken = text.replace("now > received_at +", "now > received_att +", 1)
    got = await _published(client, sla.as_uri(), lambda: _open(client, sla, broken, "yaml"))
    assert _got(got) == _expected(broken, sla) and got
    scenarios = ROOT / "examples" / "support_sla" / "scenarios.yaml"
    stext = scenarios.read_text(encoding="utf-8")
    assert await _published(client, scenarios.as_uri(), lambda: _open(client, scenarios, stext, "yaml")) == []
    bad = stext.replace("workflow:", "workflw:", 1)
    change = types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=scenarios.as_uri(), version=2),
        [types.TextDocumentContentChangeWholeDocument(bad)],
    )
    got = await _published(client, scenarios.as_uri(), lambda: client.text_document_did_change(change))
    assert [(d.code, d.message.splitlines()[0]) for d in got] == [
        ("RK0601", "unknown key `workflw` in a scenario")
    ]
