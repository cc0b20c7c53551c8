"""``rulekit studio``: a local web app to edit, see, run, test and compare policies.

Serves :mod:`rulekit.studio` on a loopback address by default, prints its address and
opens it in the browser (``--no-open``: not). Needs the ``server`` extra: without it,
exit status 2 naming what to install.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_OK, EXIT_USAGE
from rulekit.cli.store_verbs import server_extra_missing

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "studio",
        help="edit, see, run, test and compare policies in the browser",
        description="Serve a local web app for the policies and scenario files under PATH "
        "(default: the current folder). Only files under the PATHs can be read or written; "
        "every API call needs the token the page holds.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="policy files or folders (default .)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--no-open", action="store_true", help="do not open the browser")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if server_extra_missing("studio"):
        return EXIT_USAGE
    import webbrowser

    from rulekit.service import serving
    from rulekit.studio.app import create_app, new_token

    if not serving.is_loopback(args.host):
        print(
            f"rulekit: warning: listening on {args.host}: anyone who can reach it can read "
            "and write the files under the given paths (with the page's token)",
            file=sys.stderr,
        )
    roots = args.paths or ["."]
    for root in roots:
        if not Path(root).exists():
            print(f"rulekit: error: {root}: no such file or folder", file=sys.stderr)
            return EXIT_USAGE
    try:
        listening = serving.listen(args.host, args.port)
    except serving.ServeError as e:
        print(f"rulekit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    port = listening.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{port}/"
    try:
        app = create_app(roots, args.host, port, new_token())
        print(f"rulekit studio: {url}", flush=True)
        if not args.no_open:
            webbrowser.open(url)
        serving.serve(app, listening)
    finally:
        listening.close()
    return EXIT_OK
