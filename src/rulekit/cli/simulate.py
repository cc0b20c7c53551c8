"""``rulekit simulate``: open a case and run steps on it, printing its timeline."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rulekit.cli.exits import EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "simulate",
        help="run a case from the command line and print its timeline",
        description="Open a case and run steps on it: from --step arguments, a --steps file, or "
        "interactively (when no steps are given and the input is a terminal, or with -i). "
        "Steps: 'send EVENT by ACTOR [field=value ...]', 'advance 48h', 'until 2026-03-03T12:00:00+08:00', "
        "'update order.shipped=true'. Interactive extras: allowed, facts, history, help, quit.",
    )
    p.add_argument("file", metavar="FILE", help="the policy (.rk, .yaml or compiled .json)")
    p.add_argument("--workflow", "-w", required=True, help="the workflow to open a case of")
    p.add_argument(
        "--facts",
        default="{}",
        metavar="JSON",
        help="initial facts as JSON (or @FILE, JSON or YAML)",
    )
    p.add_argument("--at", metavar="TIME", help="when the case opens (RFC 3339); default: now")
    p.add_argument(
        "--step", action="append", default=[], metavar="STEP", help="a step (repeatable)"
    )
    p.add_argument("--steps", metavar="FILE", help="a file of steps, one per line (# comments)")
    p.add_argument("--interactive", "-i", action="store_true", help="read steps from a prompt")
    p.add_argument("--json", action="store_true", help="print the case and its timeline as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from rulekit.core.errors import CompileError, StepRefused
    from rulekit.core.source import read_text
    from rulekit.expr import stdlib
    from rulekit.policy import load
    from rulekit.runtime import Engine
    from rulekit.runtime.timeline import show_time
    from rulekit.tools.simulate import Simulation

    try:
        policy = load(args.file)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return EXIT_USAGE
    engine = Engine(policy)
    try:
        at = (
            stdlib.parse_timestamp(args.at) if args.at else datetime.now(UTC).replace(microsecond=0)
        )
    except stdlib.CelError as e:
        raise UsageError(f"--at: {e}") from None
    try:
        case = engine.open(args.workflow, _facts(args.facts), at=at)
    except StepRefused as e:
        if e.code == "unknown_workflow":
            raise UsageError(e.message) from None
        raise UsageError(f"the case cannot be opened: {e.code}: {e.message}") from None
    sim = Simulation(engine, case, as_json=args.json)
    sim.say(f"opened a case of {args.workflow} at {show_time(at, sim.tz)}")
    sim.show(case.history)
    steps = list(args.step)
    if args.steps:
        try:
            steps += [
                line
                for line in read_text(args.steps).splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
        except OSError as e:
            raise UsageError(f"--steps: cannot read {args.steps}: {e.strerror}") from None
    for line in steps:
        if not sim.step(line):
            break
    if args.interactive or (not steps and sys.stdin.isatty() and not args.json):
        sim.prompt()
    if args.json:
        print(json.dumps(sim.report(), indent=2, ensure_ascii=False))
    else:
        outcome = f", outcome {case.outcome}" if case.final else ""
        effects = ", ".join(e.name for e in case.effects) or "none"
        sim.say(
            f"now: `{case.state.name}`{' (final' + outcome + ')' if case.final else ''}; effects: {effects}"
        )
    return EXIT_OK


def _facts(text: str) -> Any:
    """The initial facts (``--facts``): JSON, or ``@FILE`` of JSON or YAML."""
    from rulekit.expr.convert import MAX_NESTING, ConversionError, check_nesting

    try:
        data = _read_facts(text)
    except RecursionError:
        raise UsageError(f"--facts: nested more than {MAX_NESTING} levels deep") from None
    try:
        check_nesting(data, "--facts")
    except ConversionError as e:
        raise UsageError(str(e)) from None
    return data


def _read_facts(text: str) -> Any:
    if text.startswith("@"):
        import yaml

        from rulekit.core.source import read_text

        try:
            text = read_text(text[1:])
        except OSError as e:
            raise UsageError(f"--facts: cannot read {text[1:]}: {e.strerror}") from None
        try:
            return json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise UsageError(f"--facts: neither JSON nor YAML: {e}") from None
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as e:
        raise UsageError(f"--facts is not valid JSON: {e.msg} at column {e.colno}") from None
