"""The ``rulekit`` command: one module per verb, each adding its subcommand and running it.

Each verb module (``check``, ``eval``, ... in :data:`VERBS`) has ``add(verbs)``, which
adds its subparser and sets ``run`` to the function that runs it. The parser
is built from all of them, but a verb imports what it runs on only when it
runs: ``rulekit check`` never loads the runtime, the stores or the web stack.

Exit status (:mod:`.exits`): 0 success, 1 a check, test or evaluation failed, 2
invalid input or usage, 141 the reader of the output went away. Errors are
diagnostics on stderr, never tracebacks.

Layer: the top; imports every layer below.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rulekit.cli.exits import EXIT_BROKEN_PIPE, EXIT_USAGE, UsageError

__all__ = ["EXIT_BROKEN_PIPE", "VERBS", "main", "parser", "quiet_on_closed_pipe"]

#: The verbs, each a module of this package, in the order ``rulekit --help`` lists them.
VERBS = (
    "eval",
    "check",
    "fmt",
    "convert",
    "test",
    "simulate",
    "explain",
    "graph",
    "diff",
    "impact",
    "export",
    "compile",
    "lsp",
    "studio",
    "demo",
    "serve",
    "worker",
    "relay",
    "effects",
    "db",
    "migrate",
)


class _Version(argparse.Action):
    """``--version``: the installed package's version, read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from rulekit.core import __version__

        print(f"rulekit {__version__}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    """The command line: the top-level options and a subcommand per verb."""
    p = argparse.ArgumentParser(
        prog="rulekit", description="Check, compile and run business-process policies."
    )
    p.add_argument("--version", action=_Version)
    verbs = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in VERBS:
        importlib.import_module(f"rulekit.cli.{name}").add(verbs)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return quiet_on_closed_pipe(_main, argv)


def quiet_on_closed_pipe(run: Callable[[Sequence[str] | None], int], argv: Any) -> int:
    """``run(argv)``'s status; if its reader went away, stop quietly with status 141."""
    try:
        status = run(argv)
        sys.stdout.flush()  # inside the try: a closed pipe shows on the last write
    except BrokenPipeError:
        # The reader went away (`rulekit check ... | head -1`): stop quietly, as Unix tools
        # do. Standard output now points at /dev/null, so the flush at exit fails no more
        # (the recipe in the Python docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return status


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except UsageError as e:
        print(f"rulekit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return status
