"""The protocol side of ``rulekit lsp``: pygls wiring the features to LSP requests.

Positions: rulekit counts columns in characters; the client counts them in the
position encoding agreed at initialization (UTF-16 code units unless it offered
another), converted here one line at a time. Diagnostics are published
immediately when a document is opened or saved, and ~300 ms after the last
change while it is typed; requests on a document always see its current text.

A handler that fails is logged (standard error) and answered with an LSP error by
pygls; the server goes on. Needs the ``lsp`` extra (pygls, lsprotocol).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from rulekit.core import __version__
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.source import Source, Span
from rulekit.tools.lsp import features
from rulekit.tools.lsp.document import Analysis, analyze

log = logging.getLogger("rulekit.lsp")

#: How long typing must pause before a changed document is checked again.
DEBOUNCE_SECONDS = 0.3
#: LSP's RequestFailed: a request that was understood and refused (a rename that collides)
REQUEST_FAILED = -32803

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}
_COMPLETION_KIND = {
    "keyword": types.CompletionItemKind.Keyword,
    "state": types.CompletionItemKind.EnumMember,
    "event": types.CompletionItemKind.Event,
    "fact": types.CompletionItemKind.Variable,
    "field": types.CompletionItemKind.Field,
    "constant": types.CompletionItemKind.Constant,
    "condition": types.CompletionItemKind.Variable,
    "member": types.CompletionItemKind.EnumMember,
    "function": types.CompletionItemKind.Function,
    "fragment": types.CompletionItemKind.Module,
}
_SYMBOL_KIND = {
    "fact": types.SymbolKind.Field,
    "enum": types.SymbolKind.Enum,
    "member": types.SymbolKind.EnumMember,
    "constant": types.SymbolKind.Constant,
    "condition": types.SymbolKind.Boolean,
    "event": types.SymbolKind.Event,
    "effect": types.SymbolKind.Function,
    "fragment": types.SymbolKind.Module,
    "workflow": types.SymbolKind.Class,
    "state": types.SymbolKind.EnumMember,
    "clock": types.SymbolKind.Property,
}

T = TypeVar("T")


class RulekitServer(LanguageServer):
    """The server and what it knows of each open document."""

    def __init__(self) -> None:
        super().__init__("rulekit", __version__)
        self.analyses: dict[str, Analysis] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}
        # Checking runs on its own thread, so that a document that takes long to check
        # never stops the server from reading messages (a shutdown, other documents).
        self.checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rulekit-check")

    async def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text (checked now if it changed)."""
        text = self.workspace.get_text_document(uri).source
        known = self.analyses.get(uri)
        if known is not None and known.text == text:
            return known
        path = to_fs_path(uri) or uri

        def check() -> Analysis | None:
            # Checks wait in line: one whose text was changed again meanwhile is skipped.
            if self.workspace.get_text_document(uri).source != text:
                return None
            return analyze(path, text, known)

        fresh = await asyncio.get_running_loop().run_in_executor(self.checker, check)
        if fresh is None:
            return await self.analysis(uri)
        if self.workspace.get_text_document(uri).source == text:
            self.analyses[uri] = fresh
        return fresh

    async def publish(self, uri: str) -> None:
        an = await self.analysis(uri)
        if unquote(uri) not in self.workspace.text_documents:
            return  # closed while it was checked: its diagnostics were cleared
        diagnostics = [self.diagnostic(an, d) for d in an.diagnostics]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        )

    # -- positions ---------------------------------------------------------------------------

    def _units(self, line: str, column: int) -> int:
        """The client's column for 0-based character ``column`` of ``line``."""
        head = line[:column]
        encoding = self.workspace.position_encoding
        if encoding == types.PositionEncodingKind.Utf32:
            return len(head)
        if encoding == types.PositionEncodingKind.Utf8:
            return len(head.encode("utf-8", "surrogatepass"))
        return len(head) + sum(1 for ch in head if ord(ch) > 0xFFFF)

    def _chars(self, line: str, units: int) -> int | None:
        """The character column of the client's column ``units`` (None past the line's end)."""
        encoding = self.workspace.position_encoding
        count = 0
        for i, ch in enumerate(line):
            if count >= units:
                return i if count == units else None
            if encoding == types.PositionEncodingKind.Utf32:
                count += 1
            elif encoding == types.PositionEncodingKind.Utf8:
                count += len(ch.encode("utf-8", "surrogatepass"))
            else:
                count += 2 if ord(ch) > 0xFFFF else 1
        return len(line) if count == units else None

    def offset(self, an: Analysis, pos: types.Position) -> int | None:
        """The character offset of a client position; None when it is out of range."""
        line = an.source.line_text(pos.line + 1)
        if pos.line < 0 or pos.character < 0 or an.source.offset(pos.line + 1, 1) is None:
            return None
        column = self._chars(line, pos.character)
        return None if column is None else an.source.offset(pos.line + 1, column + 1)

    def position(self, source: Source, offset: int) -> types.Position:
        p = source.position(offset)
        line = source.line_text(p.line)
        return types.Position(p.line - 1, self._units(line, p.column - 1))

    def range(self, an: Analysis, span: Span) -> types.Range:
        return types.Range(self.position(an.source, span.start), self.position(an.source, span.end))

    def diagnostic(self, an: Analysis, d: Diagnostic) -> types.Diagnostic:
        """A rulekit diagnostic as LSP's: the same code, range, severity, message and help."""
        message = d.message
        for note in d.notes:
            message += f"\nnote: {note}"
        if d.help:
            message += f"\nhelp: {d.help}"
        if d.file == an.path:
            start = types.Position(
                d.line - 1, self._units(an.source.line_text(d.line), d.column - 1)
            )
            end = types.Position(
                d.end_line - 1, self._units(an.source.line_text(d.end_line), d.end_column - 1)
            )
        else:  # found in another file (a calendar the policy reads): shown at the top
            message = f"{d.file}:{d.line}:{d.column}: {message}"
            start = end = types.Position(0, 0)
        return types.Diagnostic(
            range=types.Range(start, end),
            message=message,
            severity=_SEVERITY[d.severity],
            code=d.code,
            source="rulekit",
        )


async def _at(
    ls: RulekitServer, uri: str, pos: types.Position, f: Callable[[Analysis, int], T]
) -> tuple[Analysis, T] | None:
    """``f(analysis, offset)`` at a client position; None when the position is out of range."""
    an = await ls.analysis(uri)
    offset = ls.offset(an, pos)
    if offset is None:
        return None
    return an, f(an, offset)


class _QuietRefusals(logging.Filter):
    """pygls logs every error answer with its traceback; a refused rename is no fault of
    the server's, logged by :func:`_refused` in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, JsonRpcException) and error.code == REQUEST_FAILED)


def create() -> RulekitServer:
    """A server with every feature registered (``server.start_io()`` runs it)."""
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_QuietRefusals())
    server = RulekitServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: RulekitServer, params: types.DidOpenTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: RulekitServer, params: types.DidSaveTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: RulekitServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        earlier = ls.pending.pop(uri, None)
        if earlier is not None:
            earlier.cancel()

        async def later() -> None:
            await asyncio.sleep(DEBOUNCE_SECONDS)
            ls.pending.pop(uri, None)
            try:
                await ls.publish(uri)
            except Exception:
                log.exception("checking %s failed", uri)

        ls.pending[uri] = asyncio.get_running_loop().create_task(later())

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RulekitServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.analyses.pop(uri, None)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: RulekitServer, params: types.HoverParams) -> types.Hover | None:
        found = await _at(ls, params.text_document.uri, params.position, features.hover)
        if found is None:
            return None
        an, h = found
        if h is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=h.markdown),
            range=ls.range(an, h.span),
        )

    def locations(
        ls: RulekitServer, uri: str, an: Analysis, spans: list[Span]
    ) -> list[types.Location]:
        return [types.Location(uri=uri, range=ls.range(an, s)) for s in spans]

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def definition(ls: RulekitServer, params: types.DefinitionParams) -> list[types.Location]:
        uri = params.text_document.uri
        found = await _at(ls, uri, params.position, features.definition)
        return [] if found is None else locations(ls, uri, found[0], found[1])

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    async def references(ls: RulekitServer, params: types.ReferenceParams) -> list[types.Location]:
        uri = params.text_document.uri
        include = params.context.include_declaration

        def refs(an: Analysis, offset: int) -> list[Span]:
            return features.references(an, offset, include)

        found = await _at(ls, uri, params.position, refs)
        return [] if found is None else locations(ls, uri, found[0], found[1])

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", ">", '"']),
    )
    async def completion(ls: RulekitServer, params: types.CompletionParams) -> types.CompletionList:
        found = await _at(ls, params.text_document.uri, params.position, features.completion)
        items = [
            types.CompletionItem(
                label=c.label,
                kind=_COMPLETION_KIND.get(c.kind),
                detail=c.detail,
                documentation=c.documentation,
            )
            for c in (found[1] if found is not None else [])
        ]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def symbols(
        ls: RulekitServer, params: types.DocumentSymbolParams
    ) -> list[types.DocumentSymbol]:
        an = await ls.analysis(params.text_document.uri)

        def convert(s: features.Symbol) -> types.DocumentSymbol:
            return types.DocumentSymbol(
                name=s.name,
                kind=_SYMBOL_KIND.get(s.kind, types.SymbolKind.Variable),
                range=ls.range(an, s.span),
                selection_range=ls.range(an, s.selection),
                detail=s.detail,
                children=[convert(c) for c in s.children] or None,
            )

        return [convert(s) for s in features.symbols(an)]

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    async def formatting(
        ls: RulekitServer, params: types.DocumentFormattingParams
    ) -> list[types.TextEdit]:
        an = await ls.analysis(params.text_document.uri)
        # on the checking thread: formatting parses and checks, and parsers are not shared
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(ls.checker, features.formatting, an)
        if out is None or out == an.text:
            return []
        whole = types.Range(types.Position(0, 0), ls.position(an.source, len(an.text)))
        return [types.TextEdit(range=whole, new_text=out)]

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    async def prepare_rename(
        ls: RulekitServer, params: types.PrepareRenameParams
    ) -> types.PrepareRenamePlaceholder | None:
        found = await _refused(
            _at, ls, params.text_document.uri, params.position, features.prepare_rename
        )
        if found is None or found[1] is None:
            return None
        an, (span, text) = found
        return types.PrepareRenamePlaceholder(range=ls.range(an, span), placeholder=text)

    @server.feature(types.TEXT_DOCUMENT_RENAME)
    async def rename(ls: RulekitServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
        uri = params.text_document.uri

        def edits(an: Analysis, offset: int) -> list[tuple[Span, str]]:
            return features.rename(an, offset, params.new_name)

        found = await _refused(_at, ls, uri, params.position, edits)
        if found is None:
            return None
        an, changes = found
        return types.WorkspaceEdit(
            changes={uri: [types.TextEdit(range=ls.range(an, s), new_text=t) for s, t in changes]}
        )

    return server


async def _refused(f: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """``await f(*args)``, a refused rename answered as LSP's RequestFailed with the reason."""
    try:
        return await f(*args)
    except features.RenameError as e:
        log.info("rename refused: %s", e)
        raise JsonRpcException(str(e), REQUEST_FAILED) from None
