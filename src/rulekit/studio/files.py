"""The files the studio may touch: those under the roots named on the command line.

Every path from the browser is resolved (symlinks followed, ``..`` collapsed) before it
is compared with the roots, so neither ``../``, an absolute path nor a symlink leads
out. A root may be a folder or a single file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: folders never listed (tools' caches, dependencies, version control)
SKIPPED = frozenset({".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"})
#: at most this many files are listed, however large the roots
MAX_LISTED = 5000


class OutsideRoots(Exception):
    """A path that does not resolve to a place under the roots."""


class NotEditable(Exception):
    """A path under the roots that the studio does not read or write: not a policy or
    scenario file, or in a hidden folder (``.git/hooks`` is code git runs)."""


#: the files the studio reads and writes: policies and scenario files
EDITABLE = (".rk", ".yaml", ".yml")
#: the largest file the studio reads, in bytes (a policy is far smaller)
MAX_FILE = 4 * 1024 * 1024


def etag(data: bytes) -> str:
    """A file's version as the API names it: the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


class Roots:
    """The folders (or files) the studio serves; the first that contains a file names it."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = [Path(p).resolve() for p in paths]

    def _bases(self) -> Iterator[tuple[Path, Path]]:
        """(root, the folder relative paths start from) for each root."""
        for root in self.paths:
            yield root, (root if root.is_dir() else root.parent)

    def contains(self, path: Path) -> bool:
        return any(
            path == root or (root.is_dir() and path.is_relative_to(root)) for root in self.paths
        )

    def resolve(self, given: str) -> Path:
        """The file ``given`` names (relative to a root), resolved; OutsideRoots when it
        is not under one. A NUL or an empty path names nothing."""
        if not given or "\x00" in given:
            raise OutsideRoots(f"{given!r} is not a path under the roots")
        for _, base in self._bases():
            candidate = (base / given).resolve()
            if self.contains(candidate):
                return candidate
        raise OutsideRoots(f"{given!r} is outside the folders the studio serves")

    def editable(self, given: str) -> Path:
        """The policy or scenario file ``given`` names (:meth:`resolve`), which the studio
        may read and write: NotEditable for any other kind of file, or one in a hidden
        folder or hidden itself."""
        found = self.resolve(given)
        if found.suffix.lower() not in EDITABLE:
            raise NotEditable(f"{given!r}: the studio reads and writes only .rk and YAML files")
        if any(part.startswith(".") for part in Path(self.relative(found)).parts):
            raise NotEditable(f"{given!r}: the studio does not read or write hidden files")
        return found

    def relative(self, path: Path) -> str:
        """``path`` relative to the first root that contains it, with POSIX separators."""
        resolved = path.resolve()
        for root, base in self._bases():
            if resolved == root or (root.is_dir() and resolved.is_relative_to(root)):
                return resolved.relative_to(base).as_posix()
        raise OutsideRoots(f"{path} is outside the folders the studio serves")

    def files(self, suffixes: tuple[str, ...]) -> list[Path]:
        """The files under the roots with one of ``suffixes`` (sorted, at most
        :data:`MAX_LISTED`; symlinks that lead out are left out)."""
        found: list[Path] = []
        for root in self.paths:
            if root.is_file():
                candidates: list[Path] = [root]
            else:
                candidates = []
                for folder, dirs, names in os.walk(root):
                    dirs[:] = sorted(d for d in dirs if d not in SKIPPED and not d.startswith("."))
                    candidates += [Path(folder, n) for n in sorted(names)]
                    if len(candidates) > MAX_LISTED:
                        break
            for c in candidates:
                if c.suffix.lower() in suffixes and self.contains(c.resolve()) and c not in found:
                    found.append(c)
        return found[:MAX_LISTED]


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path``'s contents with ``data`` at once: a temporary file beside it,
    then a rename (a reader sees the old file or the new one, never half of one)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
