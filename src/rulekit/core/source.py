"""Source text and spans: the first phase, shared by every later one.

A :class:`Span` is a pair of character offsets into one :class:`Source`.
Line and column are computed on demand (1-based, columns counted in
characters), so phases carry two ints per node and never re-read text.

A source may be *embedded* in a host file (a condition string inside a YAML
rule file): ``origin`` maps offsets of the embedded text to offsets of the
host text, so diagnostics point into the file the author edits (as cel-go's
``policy/source.go`` does).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a file as its author sees it: UTF-8, without the byte-order mark
    (U+FEFF) that some editors write first, so positions are those the editor shows.

    Raises OSError or UnicodeDecodeError like :meth:`Path.read_text`.
    """
    return Path(path).read_text(encoding="utf-8-sig")


def find_files(paths: Iterable[str], wanted: Callable[[Path], bool]) -> list[Path]:
    """The files named in ``paths``, and under each folder named the files ``wanted``
    accepts (sorted, at any depth): what a command given files and folders works on.

    Raises FileNotFoundError (its argument the path as given) for a path that does not exist.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(raw)
        if path.is_dir():
            files.extend(f for f in sorted(path.rglob("*")) if wanted(f))
        else:
            files.append(path)
    return files


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open range ``[start, end)`` of character offsets into a source."""

    start: int
    end: int


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based, in characters


@dataclass(frozen=True)
class Source:
    """A piece of text with a name; optionally embedded in a host source."""

    text: str = field(repr=False)
    name: str = "<expression>"
    # For embedded text: the host source and, for each character offset of
    # ``text`` (plus one past the end), the offset in the host text.
    host: Source | None = field(default=None, repr=False)
    origin: tuple[int, ...] | None = field(default=None, repr=False)
    _line_starts: list[int] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        text = self.text
        i = text.find("\n")
        while i >= 0:  # str.find, not a Python loop over every character
            starts.append(i + 1)
            i = text.find("\n", i + 1)
        self._line_starts.extend(starts)

    def position(self, offset: int) -> Position:
        """Line and column of ``offset`` (clamped into the text)."""
        if self.host is not None and self.origin is not None:
            offset = max(0, min(offset, len(self.origin) - 1))
            return self.host.position(self.origin[offset])
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return Position(line + 1, offset - self._line_starts[line] + 1)

    def offset(self, line: int, column: int) -> int | None:
        """The offset of 1-based ``line`` and ``column`` (the column may be one past the
        line's end); None when there is no such place (an editor asking out of range)."""
        if self.host is not None or not 1 <= line <= len(self._line_starts) or column < 1:
            return None
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        end = len(self.text) if end < 0 else end
        return start + column - 1 if start + column - 1 <= end else None

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its newline (of the host, if embedded)."""
        if self.host is not None:
            return self.host.line_text(line)
        if not 1 <= line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start:] if end < 0 else self.text[start:end]

    @property
    def file(self) -> str:
        return self.host.file if self.host is not None else self.name

    def snippet(self, span: Span) -> str:
        return self.text[span.start : span.end]
