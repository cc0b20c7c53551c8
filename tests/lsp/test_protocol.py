"""``rulekit lsp`` driven over stdio in a subprocess, as an editor drives it (pygls's client).

One server answers the module's tests (each start costs about half a second): the
shipped policy and copies of it are opened under their own URIs, and every answer
is compared with what is expected exactly (tables of position -> answer).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from rulekit.analysis import check_source
from rulekit.tools.formatter import format_checked

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
TEXT = POLICY.read_text(encoding="utf-8")
SERVER = [sys.executable, "-m", "rulekit.cli", "lsp"]

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Editor(LanguageClient):
    """A client that keeps the diagnostics the server publishes, by document."""

    def __init__(self) -> None:
        super().__init__("rulekit-tests", "1")
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        self.stderr: list[bytes] = []

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)

    async def start(self, *command: str) -> None:
        """Start the server and initialize it, as an editor does."""
        await self.start_io(*command)
        assert self._server is not None and self._server.stderr is not None
        stderr = self._server.stderr

        async def drain() -> None:  # the server's log: read, so that its pipe never fills
            while line := await stderr.readline():
                self.stderr.append(line)

        self._drain = asyncio.create_task(drain())
        self.initialize_result = await self.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    text_document=types.TextDocumentClientCapabilities(
                        rename=types.RenameClientCapabilities(prepare_support=True)
                    )
                ),
                process_id=None,
                root_uri=ROOT.as_uri(),
            )
        )
        self.initialized(types.InitializedParams())

    async def finish(self) -> None:
        await self.shutdown_async(None)
        self.exit(None)
        await self.stop()
        await self._drain


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[Editor]:
    """One server for the module's tests."""
    editor = Editor()
    await editor.start(*SERVER)
    yield editor
    await editor.finish()


async def _published(client: Editor, uri: str, send: object) -> list[types.Diagnostic]:
    """Send a notification (``send()``) and wait for the diagnostics it makes the server
    publish for ``uri``."""
    client.diagnostics.pop(uri, None)
    send()  # type: ignore[operator]
    for _ in range(500):
        if uri in client.diagnostics:
            return list(client.diagnostics[uri])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no diagnostics published for {uri}")


def _open(client: Editor, path: Path, text: str, language: str = "rulekit") -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
        )
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


def _got(
    diags: list[types.Diagnostic],
) -> list[tuple[str, str, int, tuple[int, int, int, int], str]]:
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
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return (line, col, line, col + len(needle))


def _range(r: types.Range) -> tuple[int, int, int, int]:
    return (r.start.line, r.start.character, r.end.line, r.end.character)


async def test_capabilities(client: Editor) -> None:
    caps = client.initialize_result.capabilities
    assert caps.hover_provider and caps.definition_provider and caps.references_provider
    assert caps.document_symbol_provider and caps.document_formatting_provider
    assert caps.rename_provider == types.RenameOptions(prepare_provider=True)
    assert caps.completion_provider is not None
    assert list(caps.completion_provider.trigger_characters or ()) == [".", ">", '"']
    assert caps.text_document_sync is not None
    assert client.initialize_result.server_info == types.ServerInfo("rulekit", "0.1.0")


# -- diagnostics -------------------------------------------------------------------------------

BROKEN = TEXT.replace(
    "-> merchant_rejected set rejection.reason", "-> merchant_rejectd set rejection.reason", 1
)
WARNS = TEXT.replace(
    "  final state withdrawn\n  use rejection\n  use dispute\n}\n\nworkflow return_refund",
    "  final state withdrawn\n  state orphan\n  use rejection\n  use dispute\n}\n\nworkflow return_refund",
    1,
)


async def test_diagnostics_as_check_reports_them(client: Editor, tmp_path: Path) -> None:
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
    assert (
        await _published(client, warns.as_uri(), lambda: client.text_document_did_close(closed))
        == []
    )


async def test_columns_are_utf16_code_units(client: Editor, tmp_path: Path) -> None:
    """rulekit counts characters; LSP (by default) UTF-16 code units: an emoji is two."""
    text = 'policy p\nconst A = "\U0001f600" + B\n'
    path = tmp_path / "emoji.rk"
    got = await _published(client, path.as_uri(), lambda: _open(client, path, text))
    assert [(d.code, _range(d.range)) for d in got] == [("RK0201", (1, 17, 1, 18))]
    doc = types.TextDocumentIdentifier(path.as_uri())
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc, position=types.Position(1, 7))
    )
    assert hover is not None and _range(hover.range) == (1, 6, 1, 7)
    assert isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.value == '```rulekit\nconst A = "\U0001f600" + B\n```'
    # a position inside the emoji's two units is no character: nothing there
    definition = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc, position=types.Position(1, 12))
    )
    assert definition == []


async def test_debounced_while_typing(client: Editor, tmp_path: Path) -> None:
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


async def test_yaml_policy_and_scenario_file(client: Editor) -> None:
    sla = ROOT / "examples" / "support_sla" / "support_sla.yaml"
    text = sla.read_text(encoding="utf-8")
    broken = text.replace("now > received_at +", "now > received_att +", 1)
    got = await _published(client, sla.as_uri(), lambda: _open(client, sla, broken, "yaml"))
    assert _got(got) == _expected(broken, sla) and got
    scenarios = ROOT / "examples" / "support_sla" / "scenarios.yaml"
    stext = scenarios.read_text(encoding="utf-8")
    assert (
        await _published(
            client, scenarios.as_uri(), lambda: _open(client, scenarios, stext, "yaml")
        )
        == []
    )
    bad = stext.replace("workflow:", "workflw:", 1)
    change = types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=scenarios.as_uri(), version=2),
        [types.TextDocumentContentChangeWholeDocument(bad)],
    )
    got = await _published(
        client, scenarios.as_uri(), lambda: client.text_document_did_change(change)
    )
    assert [(d.code, d.message.splitlines()[0]) for d in got] == [
        ("RK0601", "unknown key `workflw` in a scenario")
    ]


# -- names -------------------------------------------------------------------------------------

#: (text before the cursor's place, characters into it) -> the hover's markdown
HOVERS = {
    ("<= FAST_REFUND_AGE", 5): "```rulekit\nconst FAST_REFUND_AGE = 6h\n```\n\nType: `duration`\n\n"
    "clause 5: paid at most this long ago (6h exactly qualifies)",
    (
        "const REJECTION_GRACE",
        8,
    ): "```rulekit\nconst REJECTION_GRACE = 7d\n```\n\nType: `duration`\n\n"
    "*assumption:* not in the source: a rejected request with no reapplication, escalation or "
    "withdrawal closes as rejected after 7 days",
    ("order.amount < FAST", 3): "```rulekit\norder.amount: money\n```\n\nyuan, exact",
    ("offer.service: Service?", 0): "```rulekit\noffer.service: Service?\n```\n\n"
    "the merchant's standing offline offer (clause 3)",
    ("on reject ->", 4): "```rulekit\nevent reject(reason: string)\n```\n\nPayload: reason: string"
    "\n\nSent by: merchant",
    ("event escalate", 6): "```rulekit\nevent escalate\n```\n\nPayload: none\n\n"
    "Sent by: consumer, merchant",
    ('initial state awaiting_merchant cite "1"', 15): "```rulekit\ninitial state awaiting_merchant"
    "\n```\n\nIn refund_only.\n\nCites: “1”\n\nDeadlines:\n- after REVIEW_WINDOW -> refunded — "
    "“1. 48h passed without the merchant: the system approves and refunds” (refund_only)",
    ("final state refunded", 12): "```rulekit\nfinal state refunded\n```\n\nIn refund_only.",
    (
        '"refund" -> refunded',
        2,
    ): "```rulekit\nenum Decision { refund, reject, return, arrange }\n```\n\nA value of Decision.",
    ("since(order.paid_at)", 1): "```rulekit\nsince(order.paid_at): duration\n```",
    ("since(order.paid_at) <= FAST", 21): "```rulekit\nsince(order.paid_at) <= FAST_REFUND_AGE: "
    "bool\n```",
}


async def test_hover(client: Editor) -> None:
    _open(client, POLICY, TEXT)
    doc = types.TextDocumentIdentifier(POLICY.as_uri())
    for (needle, delta), want in HOVERS.items():
        got = await client.text_document_hover_async(
            types.HoverParams(text_document=doc, position=_pos(TEXT, needle, delta))
        )
        assert got is not None, needle
        assert isinstance(got.contents, types.MarkupContent)
        assert got.contents.value == want, needle
    # nothing there: a comment, a keyword, past the end of the text
    for pos in (
        _pos(TEXT, "// Kuaishou", 3),
        _pos(TEXT, "workflow refund_only", 2),
        types.Position(10_000, 0),
        types.Position(0, 10_000),
    ):
        assert (
            await client.text_document_hover_async(
                types.HoverParams(text_document=doc, position=pos)
            )
            is None
        )


def _occurrences(text: str, word: str, *, whole: bool = True) -> list[tuple[int, int, int, int]]:
    """The ranges of every occurrence of ``word`` as a whole word."""
    import re

    out = []
    for m in re.finditer(
        rf"(?<![\w.]){re.escape(word)}(?![\w])" if whole else re.escape(word), text
    ):
        line = text.count("\n", 0, m.start())
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1)
        out.append((line, col, line, col + len(word)))
    return out


async def test_definition_and_references(client: Editor) -> None:
    _open(client, POLICY, TEXT)
    uri = POLICY.as_uri()
    doc = types.TextDocumentIdentifier(uri)
    cases = {
        # from a use -> (the declaration, every occurrence)
        ("-> merchant_rejected set", 5): ("state merchant_rejected cite", 6, "merchant_rejected"),
        ("on escalate -> platform_review", 16): ("state platform_review", 6, "platform_review"),
        ("on reject ->", 4): ("event reject(", 6, "reject"),
        ("after REVIEW_WINDOW", 8): ("const REVIEW_WINDOW", 6, "REVIEW_WINDOW"),
        ("since(order.paid_at)", 8): ("order.paid_at: time", 0, "order.paid_at"),
        ("set rejection.reason", 6): ("rejection.reason: string?", 0, "rejection.reason"),
        ("evidence.party: Party?", 17): ("enum Party", 5, "Party"),
        ("emit refund(", 6): ("effect refund", 7, "refund("),
        ("use dispute", 5): ("fragment dispute", 9, "dispute"),
    }
    for (needle, delta), (decl, skip, word) in cases.items():
        pos = _pos(TEXT, needle, delta)
        got = await client.text_document_definition_async(
            types.DefinitionParams(text_document=doc, position=pos)
        )
        assert isinstance(got, list), needle
        name = word.rstrip("(")
        start = TEXT.index(decl) + skip
        assert [_range(loc.range) for loc in got] == [_span(TEXT, name, start)], needle
        refs = await client.text_document_references_async(
            types.ReferenceParams(
                text_document=doc,
                position=pos,
                context=types.ReferenceContext(include_declaration=True),
            )
        )
        assert refs is not None
        want = _occurrences(TEXT, word, whole=word != "refund(")
        if word == "refund(":  # the effect, not the enum member "refund" nor the event
            want = [(a, b, c, d - 1) for a, b, c, d in want]
        if word == "reject":  # the event, not the enum member "reject" nor the word in a cite
            want = [r for r in want if TEXT.splitlines()[r[0]][: r[1]].endswith(("on ", "event "))]
        assert sorted(_range(r.range) for r in refs) == sorted(want), needle
    # a state declared in three workflows: the one in the same workflow is its definition
    pos = _pos(TEXT, "on reapply -> awaiting_merchant", 15)
    got = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc, position=pos)
    )
    assert isinstance(got, list)
    assert len(got) == 3  # a fragment's state is in each workflow using it
    pos = _pos(TEXT, "when order.after_sales_until >= now -> awaiting_merchant", 41)
    got = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc, position=pos)
    )
    assert isinstance(got, list)
    start = TEXT.index('state awaiting_merchant cite "3.')
    assert [_range(loc.range) for loc in got] == [_span(TEXT, "awaiting_merchant", start)]


#: (text before the cursor, characters into it) -> labels that must be offered, and
#: labels that must not
COMPLETIONS = {
    ("-> refunded emit", 3): ({"refunded", "merchant_rejected", "platform_review"}, {"approve"}),
    ("on approve -> refunded", 3): ({"approve", "reject", "escalate", "rule"}, {"refunded"}),
    ("order.amount < FAST", 6): (
        {"amount", "paid_at", "shipped", "after_sales_until"},
        {"fast_refund_enabled"},
    ),
    ('event.decision == "refund"', 19): (
        {"refund", "reject", "return", "arrange"},
        {"exchange", "consumer"},
    ),
    ("set rejection.reason = event.reason", 29): (
        {"reason", "party", "decision", "waybill_no"},
        {"amount"},
    ),
    ("use rejection", 4): ({"rejection", "dispute"}, {"refunded"}),
}


async def test_completion(client: Editor) -> None:
    _open(client, POLICY, TEXT)
    doc = types.TextDocumentIdentifier(POLICY.as_uri())
    for (needle, delta), (wanted, unwanted) in COMPLETIONS.items():
        got = await client.text_document_completion_async(
            types.CompletionParams(text_document=doc, position=_pos(TEXT, needle, delta))
        )
        assert isinstance(got, types.CompletionList)
        labels = {i.label for i in got.items}
        assert wanted <= labels and not (unwanted & labels), (needle, labels)
    # anywhere else: keywords, constants, facts' roots, CEL functions with their signatures
    got = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=doc, position=_pos(TEXT, "    on approve -> refunded", 4)
        )
    )
    assert isinstance(got, types.CompletionList)
    items = {i.label: i for i in got.items}
    assert {"state", "final", "after", "REVIEW_WINDOW", "order", "shop", "since"} <= set(items)
    assert items["since"].detail == "since(timestamp) -> duration"
    assert items["REVIEW_WINDOW"].kind == types.CompletionItemKind.Constant


async def test_symbols(client: Editor) -> None:
    _open(client, POLICY, TEXT)
    got = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(types.TextDocumentIdentifier(POLICY.as_uri()))
    )
    assert got is not None
    top = {(s.name, s.kind) for s in got if isinstance(s, types.DocumentSymbol)}
    assert {
        ("order.amount", types.SymbolKind.Field),
        ("Service", types.SymbolKind.Enum),
        ("REVIEW_WINDOW", types.SymbolKind.Constant),
        ("approve", types.SymbolKind.Event),
        ("refund", types.SymbolKind.Function),
        ("dispute", types.SymbolKind.Module),
        ("refund_only", types.SymbolKind.Class),
    } <= top
    workflows = {
        s.name: s
        for s in got
        if isinstance(s, types.DocumentSymbol) and s.kind == types.SymbolKind.Class
    }
    assert [c.name for c in workflows["refund_only"].children or []] == [
        "awaiting_merchant",
        "refunded",
        "rejected",
        "withdrawn",
    ]
    assert workflows["refund_only"].selection_range == types.Range(
        _pos(TEXT, "workflow refund_only", 9), _pos(TEXT, "workflow refund_only", 20)
    )


async def test_formatting(client: Editor, tmp_path: Path) -> None:
    messy = TEXT.replace(
        '  initial state awaiting_merchant cite "1" {',
        'initial state   awaiting_merchant cite "1" {',
        1,
    )
    path = tmp_path / "messy.rk"
    uri = _open(client, path, messy)
    opts = types.FormattingOptions(tab_size=2, insert_spaces=True)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri), options=opts
        )
    )
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == format_checked(messy, str(path)) == TEXT
    assert _range(edits[0].range) == (0, 0, TEXT.count("\n"), 0)
    # already formatted: nothing; syntax errors: nothing
    for name, text in (("clean.rk", TEXT), ("syntax.rk", TEXT + "workflow {")):
        uri = _open(client, tmp_path / name, text)
        edits = await client.text_document_formatting_async(
            types.DocumentFormattingParams(
                text_document=types.TextDocumentIdentifier(uri), options=opts
            )
        )
        assert not edits


async def test_rename(client: Editor) -> None:
    _open(client, POLICY, TEXT)
    uri = POLICY.as_uri()
    doc = types.TextDocumentIdentifier(uri)
    cases = {
        ("after REVIEW_WINDOW", 8): ("REVIEW_WINDOW", "MERCHANT_REVIEW"),
        ("-> merchant_rejected set", 5): ("merchant_rejected", "rejected_by_merchant"),
        ("on reapply", 5): ("reapply", "resubmit"),
        ("since(order.paid_at)", 8): ("order.paid_at", "order.payment_time"),
    }
    for (needle, delta), (old, new) in cases.items():
        pos = _pos(TEXT, needle, delta)
        prepared = await client.text_document_prepare_rename_async(
            types.PrepareRenameParams(text_document=doc, position=pos)
        )
        assert isinstance(prepared, types.PrepareRenamePlaceholder) and prepared.placeholder == old
        edit = await client.text_document_rename_async(
            types.RenameParams(text_document=doc, position=pos, new_name=new)
        )
        assert edit is not None and edit.changes is not None
        ranges = sorted(_range(e.range) for e in edit.changes[uri])
        assert ranges == sorted(_occurrences(TEXT, old)), needle
        assert {e.new_text for e in edit.changes[uri]} == {new}
    refusals = {
        ("after REVIEW_WINDOW", 8, "state"): "`state` is a keyword or reserved word",
        (
            "after REVIEW_WINDOW",
            8,
            "RETURN_WINDOW",
        ): "a constant named `RETURN_WINDOW` already exists",
        ("-> merchant_rejected set", 5, "refunded"): "a state named `refunded` already exists",
        ("on reapply", 5, "approve"): "an event named `approve` already exists",
        ("on reapply", 5, "2x"): "`2x` is not a name",
        (
            "since(order.paid_at)",
            8,
            "actor.paid",
        ): "`actor` is reserved: no fact path may start with it",
    }
    for (needle, delta, new), message in refusals.items():
        with pytest.raises(Exception, match=message):
            await client.text_document_rename_async(
                types.RenameParams(
                    text_document=doc, position=_pos(TEXT, needle, delta), new_name=new
                )
            )
    # no name there: nothing to rename
    pos = _pos(TEXT, "// Kuaishou", 3)
    assert (
        await client.text_document_prepare_rename_async(
            types.PrepareRenameParams(text_document=doc, position=pos)
        )
        is None
    )


async def test_broken_text_falls_back_to_the_last_good_parse(
    client: Editor, tmp_path: Path
) -> None:
    path = tmp_path / "editing.rk"
    uri = path.as_uri()
    await _published(client, uri, lambda: _open(client, path, TEXT))
    # the author types at the end: the text no longer parses
    typing = TEXT + "workflow half {\n  state "
    change = types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [types.TextDocumentContentChangeWholeDocument(typing)],
    )
    got = await _published(client, uri, lambda: client.text_document_did_change(change))
    assert _got(got) == _expected(typing, path) and got
    doc = types.TextDocumentIdentifier(uri)
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc, position=_pos(TEXT, "order.amount < FAST", 3))
    )
    assert hover is not None and "order.amount: money" in str(hover.contents)
    got_c = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=doc, position=types.Position(typing.count("\n"), len("  state "))
        )
    )
    assert isinstance(got_c, types.CompletionList) and got_c.items
    # out of range, on a text that does not parse: nothing, and the server goes on
    far = types.Position(typing.count("\n") + 5, 3)
    assert (
        await client.text_document_definition_async(
            types.DefinitionParams(text_document=doc, position=far)
        )
        == []
    )


# -- robustness --------------------------------------------------------------------------------


async def test_a_failing_handler_is_answered_with_an_error() -> None:
    """A feature that raises is logged and answered with an LSP error; the server goes on."""
    boom = (
        "import sys, rulekit.tools.lsp.features as f\n"
        "def hover(an, offset): raise RuntimeError('boom')\n"
        "f.hover = hover\n"
        "from rulekit.cli import main\n"
        "sys.exit(main(['lsp']))\n"
    )
    client = Editor()
    await client.start(sys.executable, "-c", boom)
    try:
        _open(client, POLICY, TEXT)
        doc = types.TextDocumentIdentifier(POLICY.as_uri())
        with pytest.raises(Exception, match="boom"):
            await client.text_document_hover_async(
                types.HoverParams(text_document=doc, position=_pos(TEXT, "order.amount", 1))
            )
        got = await client.text_document_definition_async(
            types.DefinitionParams(text_document=doc, position=_pos(TEXT, "after REVIEW_WINDOW", 8))
        )
        assert isinstance(got, list) and len(got) == 1
    finally:
        await client.finish()
    assert any(b"RuntimeError: boom" in line for line in client.stderr)  # logged
