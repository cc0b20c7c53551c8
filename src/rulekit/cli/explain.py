"""``rulekit explain``: why a case (a scenario's, or a stored one) is where it is."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from rulekit.cli.store_verbs import add_store_option

if TYPE_CHECKING:
    from argparse import _SubParsersAction

    from rulekit.policy import Policy
    from rulekit.runtime.explain import CaseExplanation


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "explain",
        help="why a case is in its state, why an effect happened, why a step was refused",
        description="Explain a case: the chain of rules that led to its state (--why state), "
        "to an effect (--why effect:NAME) or to a refused step (--why refusal[:EVENT]), each "
        "with what triggered it, its conditions with the values they saw and its cited "
        "clause. The case is a scenario's (FILE is a scenario file, --scenario its name) or "
        "a stored one (FILE is its policy, --case its id, --store where it is). Exit 0 when "
        "explained, 1 when what was asked about did not happen, 2 for invalid input.",
    )
    p.add_argument("file", metavar="FILE", help="a scenario file, or with --case the policy")
    p.add_argument("--scenario", metavar="NAME", help="the scenario of FILE to explain")
    p.add_argument("--case", metavar="ID", help="the stored case to explain (FILE: its policy)")
    add_store_option(p)
    p.add_argument(
        "--why",
        default="state",
        metavar="QUESTION",
        help="state (default), effect:NAME, refusal (the last refused step) or refusal:EVENT",
    )
    p.add_argument(
        "--all", action="store_true", help="show every record, not only the causal chain"
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit.runtime.explain import QuestionError

    if (args.scenario is None) == (args.case is None):
        raise UsageError("name what to explain: --scenario NAME, or --case ID (and --store URL)")
    if args.scenario is not None and args.store is not None:
        raise UsageError("--store goes with --case, not --scenario")
    try:
        explained = _scenario(args) if args.scenario is not None else _stored(args)
    except QuestionError as e:
        raise UsageError(f"--why: {e}") from None
    if explained is None:
        return EXIT_USAGE
    from rulekit.runtime.explain import explanation_data, render_text

    if args.format == "json":
        print(json.dumps(explanation_data(explained), indent=2, ensure_ascii=False))
    else:
        print(render_text(explained))
    return EXIT_OK if explained.found else EXIT_FAILED


def _scenario(args: argparse.Namespace) -> CaseExplanation | None:
    from pathlib import Path

    from rulekit.cli.test import print_scenario_error
    from rulekit.core.errors import CompileError
    from rulekit.policy import load
    from rulekit.runtime import Engine
    from rulekit.runtime.explain import check_question, explain
    from rulekit.tools import explain as scenario_runs
    from rulekit.tools import scenarios

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such scenario file: {args.file}")
    try:
        sf = scenarios.read(path)
        scenario = scenario_runs.find(sf.scenarios, args.scenario)
        try:
            policy = load(scenarios.shown_path(sf.policy_path))
        except CompileError as e:
            print_scenario_error(path, scenarios.load_error(sf, e))
            print("\n" + e.rendered, file=sys.stderr)
            return None
        scenarios.check_names(sf, policy)
    except scenarios.ScenarioFileError as e:
        print_scenario_error(path, e)
        return None
    except scenario_runs.ScenarioNotFound as e:
        raise UsageError(str(e)) from None
    check_question(args.why, policy)
    ran = scenario_runs.run(Engine(policy), scenario)
    if ran.stopped is not None and ran.case is not None:
        print(
            f"rulekit: note: scenario {scenario.name!r} stopped early: {ran.stopped}",
            file=sys.stderr,
        )
    return explain(
        policy,
        scenario.workflow,
        ran.case.history if ran.case is not None else (),
        args.why,
        refusals=ran.refusals,
        everything=args.all,
    )


def _stored(args: argparse.Namespace) -> CaseExplanation | None:
    from rulekit.core.errors import CompileError
    from rulekit.policy import load
    from rulekit.runtime.explain import check_question, explain
    from rulekit.stores import DEFAULT_STORE, CaseNotFound, StoreError, open_store

    try:
        policy = load(args.file)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return None
    except OSError as e:
        raise UsageError(f"cannot read {args.file}: {e.strerror}") from None
    check_question(args.why, policy)
    if args.why.startswith("refusal"):
        raise UsageError(
            "--why refusal: a store keeps no refused steps (a refused step changes nothing "
            "and leaves no record); explain a scenario to see one"
        )
    url = args.store if args.store is not None else os.environ.get("RULEKIT_STORE", DEFAULT_STORE)
    try:
        store = open_store(url)
        try:
            case = store.get(args.case)
            _same_version(policy, case.policy, args)
            history = store.history(args.case)
        finally:
            store.close()
    except CaseNotFound:
        raise UsageError(f"no case {args.case!r} in the store") from None
    except StoreError as e:
        raise UsageError(e.message) from None
    return explain(policy, case.workflow, history, args.why, everything=args.all)


def _same_version(policy: Policy, digest: str, args: argparse.Namespace) -> None:
    """A case is explained with the policy version it runs on, and no other: another
    version's conditions and clauses would not be the ones that decided it."""
    if policy.hash != digest:
        raise UsageError(
            f"case {args.case!r} runs on policy version {digest[:19]}, not on {args.file} "
            f"(version {policy.hash[:19]}): explain it with the policy it was opened on"
        )
