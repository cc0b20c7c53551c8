"""``rulekit graph``: draw a policy's workflows (Mermaid, Graphviz DOT or SVG)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "graph",
        help="draw the workflows",
        description="Draw workflows as Mermaid (stateDiagram-v2), Graphviz DOT, or SVG (through Graphviz's dot).",
    )
    p.add_argument("file", metavar="FILE", help="the policy (.rk, .yaml or compiled .json)")
    p.add_argument("--workflow", "-w", help="one workflow (default: all)")
    p.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")
    p.add_argument(
        "-o", "--output", metavar="OUT", help="write to a file instead of standard output"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit import policy
    from rulekit.analysis import graph
    from rulekit.core.errors import CompileError

    try:
        loaded = policy.load(args.file)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return EXIT_USAGE
    if args.workflow is not None and args.workflow not in loaded.workflows:
        raise UsageError(
            f"no workflow {args.workflow!r} in {args.file} (workflows: {', '.join(loaded.workflows)})"
        )
    chosen = [loaded.workflows[args.workflow]] if args.workflow else list(loaded.workflows.values())
    if args.format == "mermaid":
        text = "\n".join(graph.mermaid(w) for w in chosen)
    elif args.format == "dot":
        text = graph.dot(chosen)
    else:
        try:
            text = graph.svg(chosen)
        except graph.GraphvizMissing as e:
            raise UsageError(str(e)) from None
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
    else:
        sys.stdout.write(text)
    return EXIT_OK
