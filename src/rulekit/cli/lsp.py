"""``rulekit lsp``: the language server, over standard input and output (rulekit.tools.lsp).

Editors start it and speak LSP on its stdin and stdout; it logs to stderr. Needs the
``lsp`` extra: without pygls, exit status 2 naming what to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from argparse import _SubParsersAction

#: what ``rulekit[lsp]`` installs and the server imports
LSP_PACKAGES = ("pygls", "lsprotocol")


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "lsp",
        help="the language server for editors (over stdio)",
        description="Run a Language Server on standard input and output for .rk policies, YAML "
        "policies and scenario files: the diagnostics of `rulekit check` as you type, hover, go "
        "to definition, references, completion, outline, formatting and rename (docs/lsp.md). "
        "Editors start it; it needs pip install 'rulekit[lsp]'.",
    )
    p.add_argument(
        "--stdio",
        action="store_true",
        help="accepted for editors that pass it (stdio is the default)",
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="what is logged to standard error (default warning)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    missing = [name for name in LSP_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        print(
            "rulekit: error: `rulekit lsp` needs the language server's packages, not installed "
            f"here ({', '.join(missing)}): pip install 'rulekit[lsp]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from rulekit.tools.lsp.server import create

    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="rulekit lsp: %(levelname)s %(message)s",
    )
    # The protocol gets its own handle on standard output, which pygls closes when the
    # session ends: the command's own stdout stays open for the exit that follows.
    with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as out:
        create().start_io(sys.stdin.buffer, out)
    return EXIT_OK
