"""The ``rulekit`` command.

Exit status: 0 success, 1 a check, test or evaluation failed, 2 invalid input
or usage, 141 the reader of the output went away (``rulekit ... | head``: the
status a shell reports for a Unix tool stopped by SIGPIPE, 128 + 13). Errors are
diagnostics on stderr, never tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from rulekit import analysis, policy
from rulekit.analysis import diff, graph, times
from rulekit.core import __version__
from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import CompileError, EvaluationError
from rulekit.core.source import read_text
from rulekit.expr import stdlib
from rulekit.expr.convert import MAX_NESTING, ConversionError, check_nesting, convert, to_data
from rulekit.expr.expression import compile_expression
from rulekit.expr.types import DeclarationError, build_environment
from rulekit.policy import Policy, artifact
from rulekit.stores import DEFAULT_STORE
from rulekit.tools import reports, scenarios, simulate

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # as a shell reports a tool that SIGPIPE stopped


class UsageError(Exception):
    """Bad command-line input: printed as ``rulekit: error: ...``, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rulekit", description="Check, compile and run business-process policies."
    )
    p.add_argument("--version", action="version", version=f"rulekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ev = sub.add_parser(
        "eval",
        help="evaluate a condition (CEL) against values",
        description="Check and evaluate a condition. Values come as CEL expressions (--var) "
        "or JSON (--vars), read according to the declared types.",
    )
    ev.add_argument(
        "expression", help="the condition, e.g. 'order.amount < 300 and not order.shipped'"
    )
    ev.add_argument(
        "-d",
        "--declare",
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help="declare a name's type (repeatable), e.g. order.amount=money",
    )
    ev.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=EXPR",
        help='bind a name to the value of a CEL expression, e.g. order=\'{"amount": money("128")}\'',
    )
    ev.add_argument(
        "--vars", metavar="JSON", help="variables as a JSON object (or @FILE to read one)"
    )
    ev.add_argument(
        "--now", metavar="TIME", help="evaluation time, RFC 3339 (e.g. 2026-03-01T16:00:00+08:00)"
    )
    ev.add_argument(
        "--explain", action="store_true", help="show each clause with the values it read"
    )
    ev.add_argument("--format", choices=("text", "json"), default="text")
    chk = sub.add_parser(
        "check",
        help="parse, validate and check rule files",
        description="Check policies (.rk, .yaml, compiled .json). Folders are searched for .rk files "
        "and YAML files with a top-level `policy` key (scenario files, with a `scenarios` key, are "
        "skipped: `rulekit test` runs them). Exit 0 when clean, 1 when there are errors.",
    )
    chk.add_argument("paths", nargs="+", metavar="PATH", help="rule files or folders")
    chk.add_argument(
        "--format",
        choices=("text", "json", "github", "sarif"),
        default="text",
        help="text (default), json, github (workflow annotations) or sarif (SARIF 2.1.0)",
    )
    chk.add_argument(
        "--explain-times",
        action="store_true",
        help="print, per workflow and per state, the worst-case time a case stays open if nobody "
        "acts, with a path that reaches it (text, or `times` in --format json)",
    )
    chk.add_argument(
        "--max-open",
        metavar="DURATION",
        help="an error (RK0710) for each workflow where a case may stay open longer than this "
        "if nobody acts, e.g. 30d",
    )
    chk.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text output (auto: only on a terminal, and not when NO_COLOR is set)",
    )

    tst = sub.add_parser(
        "test",
        help="run scenario files",
        description="Run scenario files (a folder: every YAML file under it with a top-level `scenarios` key). "
        "Exit 0 when all pass, 1 when any fails, 2 when a file is invalid.",
    )
    tst.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    tst.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    sim = sub.add_parser(
        "simulate",
        help="run a case from the command line and print its timeline",
        description="Open a case and run steps on it: from --step arguments, a --steps file, or "
        "interactively (when no steps are given and the input is a terminal, or with -i). "
        "Steps: 'send EVENT by ACTOR [field=value ...]', 'advance 48h', 'until 2026-03-03T12:00:00+08:00', "
        "'update order.shipped=true'. Interactive extras: allowed, facts, history, help, quit.",
    )
    sim.add_argument("file", metavar="FILE", help="the policy (.rk, .yaml or compiled .json)")
    sim.add_argument("--workflow", "-w", required=True, help="the workflow to open a case of")
    sim.add_argument(
        "--facts",
        default="{}",
        metavar="JSON",
        help="initial facts as JSON (or @FILE, JSON or YAML)",
    )
    sim.add_argument("--at", metavar="TIME", help="when the case opens (RFC 3339); default: now")
    sim.add_argument(
        "--step", action="append", default=[], metavar="STEP", help="a step (repeatable)"
    )
    sim.add_argument("--steps", metavar="FILE", help="a file of steps, one per line (# comments)")
    sim.add_argument("--interactive", "-i", action="store_true", help="read steps from a prompt")
    sim.add_argument("--json", action="store_true", help="print the case and its timeline as JSON")

    gr = sub.add_parser(
        "graph",
        help="draw the workflows",
        description="Draw workflows as Mermaid (stateDiagram-v2), Graphviz DOT, or SVG (through Graphviz's dot).",
    )
    gr.add_argument("file", metavar="FILE", help="the policy (.rk, .yaml or compiled .json)")
    gr.add_argument("--workflow", "-w", help="one workflow (default: all)")
    gr.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")
    gr.add_argument(
        "-o", "--output", metavar="OUT", help="write to a file instead of standard output"
    )

    dif = sub.add_parser(
        "diff",
        help="what changed between two versions of a policy",
        description="Compare two policies (.rk, .yaml, compiled .json, or REV:path from git) and say what "
        "changed, marking the changes that can break live cases or the clients that send events.",
    )
    dif.add_argument(
        "old", metavar="OLD", help="the old version (a file, or e.g. HEAD~1:rules/x.rk)"
    )
    dif.add_argument("new", metavar="NEW", help="the new version")
    dif.add_argument(
        "--fail-on", choices=("breaking", "any"), help="exit 1 when there are such changes"
    )
    dif.add_argument("--format", choices=("text", "json"), default="text")

    comp = sub.add_parser(
        "compile",
        help="write the compiled artifact (JSON)",
        description="Check a policy and write its compiled artifact, validated by the published JSON Schema.",
    )
    comp.add_argument("file", metavar="FILE", help="a .rk or .yaml policy")
    comp.add_argument(
        "-o", "--output", metavar="OUT.json", required=True, help="where to write ('-' for stdout)"
    )

    demo = sub.add_parser(
        "demo",
        help="rulekit's main job, start to finish, on the shipped policy",
        description="Check the shipped Kuaishou after-sales policy, explain a condition, then run "
        "a case of each workflow durably in a temporary SQLite store and print the timelines.",
    )
    demo.add_argument(
        "policy",
        nargs="?",
        metavar="FILE",
        help="the policy to run (default: the shipped kuaishou_after_sales.rk)",
    )

    srv = sub.add_parser(
        "serve",
        help="the HTTP service, on the embedded store by default",
        description="Serve cases of the given policies over HTTP (OpenAPI at /openapi.json), with a "
        "deadline worker in the same process. Without --tokens, only loopback development tokens "
        "(dev:ACTOR[:PRINCIPAL], dev:admin) are accepted.",
    )
    srv.add_argument(
        "files", nargs="+", metavar="FILE", help="policies to serve (.rk, .yaml, .json)"
    )
    _store_argument(srv)
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    srv.add_argument(
        "--tokens", metavar="FILE", help="bearer tokens and who they are (YAML; docs/service.md)"
    )
    srv.add_argument(
        "--no-worker",
        action="store_true",
        help="fire no deadlines here (run `rulekit worker` instead)",
    )
    srv.add_argument(
        "--worker-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often the in-process worker looks for due deadlines (default 1)",
    )
    srv.add_argument(
        "--migrate",
        action="store_true",
        help="bring a PostgreSQL schema up to date first (SQLite stores always are)",
    )
    srv.add_argument(
        "--max-body",
        type=_positive_int,
        metavar="BYTES",
        help="refuse request bodies larger than this with 413 (default 1048576: 1 MiB)",
    )

    wrk = sub.add_parser(
        "worker",
        help="fire due deadlines (run any number, on any host)",
        description="Fire due deadlines of every case in the store, in due order, each once, "
        "recorded at its due time. Stops after the batch in flight on SIGINT or SIGTERM.",
    )
    _store_argument(wrk)
    wrk.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="pause when nothing is due"
    )
    wrk.add_argument("--batch", type=int, default=100, help="deadlines claimed per transaction")
    wrk.add_argument("--once", action="store_true", help="fire what is due now, then exit")

    db = sub.add_parser("db", help="the store's schema: upgrade, status")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, text in (
        ("upgrade", "apply the schema migrations not yet applied"),
        ("status", "show the schema version"),
    ):
        _store_argument(db_sub.add_parser(name, help=text, description=text.capitalize() + "."))
    return p


def _positive_int(text: str) -> int:
    """A whole number of 1 or more (an argument's type)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return int(text)


def _store_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        default=os.environ.get("RULEKIT_STORE", DEFAULT_STORE),
        metavar="URL",
        help="a SQLite file (default $RULEKIT_STORE or ./rulekit.db) or postgresql://user@host/db",
    )


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
    args = _parser().parse_args(argv)
    try:
        if args.command == "eval":
            return _eval(args)
        if args.command == "check":
            return _check(args)
        if args.command == "compile":
            return _compile(args)
        if args.command == "test":
            return _test(args)
        if args.command == "simulate":
            return simulate.main(args)
        if args.command == "graph":
            return _graph(args)
        if args.command == "diff":
            return _diff(args)
        if args.command == "demo":
            from rulekit.tools import demo

            return demo.main([args.policy] if args.policy else [])
        if args.command in ("serve", "worker", "db"):
            from rulekit.service import serving

            return serving.main(args)
    except UsageError as e:
        print(f"rulekit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(args.command)  # pragma: no cover - argparse rejects unknown commands


def _policy_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if candidate.suffix.lower() == ".rk" or (
                    candidate.suffix.lower() in (".yaml", ".yml") and _is_policy_yaml(candidate)
                ):
                    files.append(candidate)
        elif path.suffix.lower() in (".yaml", ".yml") and scenarios.is_scenario_file(path):
            raise UsageError(
                f"{raw} is a scenario file (it has a top-level `scenarios` key), not a policy: "
                f"run it with `rulekit test {raw}`"
            )
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"no such file or folder: {raw}")
    return files


def _is_policy_yaml(path: Path) -> bool:
    """A YAML file is a policy when its top level has a `policy` key and no `scenarios` key.

    Scenario files name their policy with a `policy` key too: `rulekit test` runs them.
    """
    if scenarios.is_scenario_file(path):
        return False
    try:
        root = yaml.compose(read_text(path), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return True  # let the checker report what is wrong with it
    return isinstance(root, yaml.MappingNode) and any(k.value == "policy" for k, _ in root.value)


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _max_open(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        limit = stdlib.parse_duration(text)
    except stdlib.CelError as e:
        raise UsageError(f"--max-open: {e}") from None
    if limit < timedelta(0):
        raise UsageError(f"--max-open: {text!r} is negative: give how long a case may stay open")
    return limit


def _check(args: argparse.Namespace) -> int:
    limit = _max_open(args.max_open)
    if args.explain_times and args.format in ("github", "sarif"):
        raise UsageError("--explain-times prints text or JSON: use --format text or json")
    files = _policy_files(args.paths)
    if not files:
        raise UsageError("no policy files found in " + ", ".join(args.paths))
    results: list[tuple[Path, policy.CheckResult, list[Diagnostic]]] = []
    explained: dict[Path, list[times.WorkflowTimes]] = {}
    for path in files:
        result = analysis.check(path)
        found = result.diagnostics
        if result.policy is not None and result.ok and (args.explain_times or limit is not None):
            figures = times.worst_case_times(result.policy)
            if args.explain_times:
                explained[path] = figures
            if limit is not None:
                found = sorted([*found, *times.too_long(figures, limit)], key=diag.sort_key)
        results.append((path, result, found))
    errors = sum(d.severity == "error" for _, _, ds in results for d in ds)
    warnings = sum(d.severity == "warning" for _, _, ds in results for d in ds)
    everything = [d for _, _, ds in results for d in ds]
    if args.format == "github":
        if everything:
            print(reports.github(everything))
        print(
            f"checked {len(files)} file{'s' * (len(files) != 1)}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}"
        )
    elif args.format == "sarif":
        print(json.dumps(reports.sarif(everything), indent=2, ensure_ascii=False))
    elif args.format == "json":
        print(
            json.dumps(
                {
                    "files": [
                        {
                            "file": str(p),
                            "ok": not any(d.severity == "error" for d in ds),
                            "diagnostics": [d.to_dict() for d in ds],
                        }
                        | (
                            {"times": [w.to_dict() for w in explained.get(p, [])]}
                            if args.explain_times
                            else {}
                        )
                        for p, _, ds in results
                    ],
                    "errors": errors,
                    "warnings": warnings,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        color = _use_color(args.color)
        for _, checked, ds in results:
            sources = {checked.source.file: checked.source}
            for d in ds:
                src = sources.get(d.file)
                text = diag.render(d, src.line_text(d.line) if src is not None else None)
                print((diag.colorize(text) if color else text) + "\n")
        for path, figures in explained.items():
            print(f"{path}: worst-case time a case stays open if nobody acts")
            print(times.render(figures) + "\n")
        print(
            f"checked {len(files)} file{'s' * (len(files) != 1)}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}"
        )
    return EXIT_FAILED if errors else EXIT_OK


def _test(args: argparse.Namespace) -> int:
    try:
        files = scenarios.discover(args.paths)
    except FileNotFoundError as e:
        raise UsageError(f"no such file or folder: {e.args[0]}") from None
    if not files:
        raise UsageError("no scenario files found in " + ", ".join(args.paths))
    results: list[scenarios.Result] = []
    policies: dict[Path, Policy] = {}
    for path in files:
        try:
            sf = scenarios.read(path)
            try:
                results.extend(scenarios.run_file(sf, policies))
            except CompileError as e:
                _print_scenario_error(path, scenarios.load_error(sf, e))
                print("\n" + e.rendered, file=sys.stderr)
                return EXIT_USAGE
        except scenarios.ScenarioFileError as e:
            _print_scenario_error(path, e)
            return EXIT_USAGE
    print(scenarios.report_json(results) if args.json else scenarios.report_text(results))
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def _print_scenario_error(path: Path, e: scenarios.ScenarioFileError) -> None:
    print(diag.render(e.diagnostic, _line(path, e.diagnostic.line)), file=sys.stderr)


def _line(path: Path, line: int) -> str | None:
    try:
        lines = read_text(path).splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[line - 1] if 0 < line <= len(lines) else None


def _diff(args: argparse.Namespace) -> int:
    try:
        old, new = diff.read(args.old), diff.read(args.new)
    except diff.DiffInputError as e:
        raise UsageError(str(e)) from None
    changes = diff.compare(old, new)
    breaking = [c for c in changes if c.breaking]
    if args.format == "json":
        print(
            json.dumps(
                {
                    "changes": [
                        {"where": c.where, "what": c.what, "breaking": c.breaking} for c in changes
                    ],
                    "breaking": len(breaking),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for c in changes:
            print(c)
        print(
            f"{len(changes)} change{'s' * (len(changes) != 1)}, {len(breaking)} breaking"
            if changes
            else "no changes"
        )
    failed = (args.fail_on == "breaking" and breaking) or (args.fail_on == "any" and changes)
    return EXIT_FAILED if failed else EXIT_OK


def _graph(args: argparse.Namespace) -> int:
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


def _compile(args: argparse.Namespace) -> int:
    try:
        text, fmt = policy.read(args.file)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return EXIT_USAGE
    if fmt == "json":
        raise UsageError(f"{args.file} is already a compiled artifact")
    result = policy.compile_source(text, fmt, args.file)
    if result.policy is None or not result.ok:
        print(result.render(), file=sys.stderr)
        return EXIT_FAILED
    data = artifact.to_json(result.policy)
    out = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(out)
    else:
        try:
            Path(args.output).write_text(out, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
        print(f"wrote {args.output} ({data['hash']})", file=sys.stderr)
    return EXIT_OK


def _declarations(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, typ = item.partition("=")
        if not sep or not name.strip() or not typ.strip():
            raise UsageError(f"--declare takes NAME=TYPE, got {item!r}")
        out[name.strip()] = typ.strip()
    return out


def _eval(args: argparse.Namespace) -> int:
    decls = _declarations(args.declare) if args.declare else None
    try:
        expr = compile_expression(args.expression, decls)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return EXIT_USAGE
    now = None
    if args.now:
        try:
            now = stdlib.parse_timestamp(args.now)
        except stdlib.CelError as e:
            raise UsageError(f"--now: {e}") from None
    variables = _variables(args, decls)
    if args.explain:
        explanation = expr.explain(variables, now=now)
        if args.format == "json":
            print(
                json.dumps(
                    {
                        "value": to_data(explanation.value) if explanation.error is None else None,
                        "error": str(explanation.error) if explanation.error else None,
                        "clauses": [
                            {
                                "text": c.text,
                                "line": c.line,
                                "column": c.column,
                                "value": to_data(c.value) if c.error is None else None,
                                "error": c.error,
                                "reads": {k: to_data(v) for k, v in c.reads},
                            }
                            for c in explanation.clauses
                        ],
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
        else:
            print(explanation)
        return EXIT_FAILED if explanation.error else EXIT_OK
    try:
        value = expr.evaluate(variables, now=now)
    except EvaluationError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        print(json.dumps({"value": to_data(value), "type": stdlib.kind(value)}, ensure_ascii=False))
    else:
        print(stdlib.render(value))
    return EXIT_OK


def _variables(args: argparse.Namespace, decls: dict[str, str] | None) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if args.vars:
        text = args.vars
        if text.startswith("@"):
            try:
                text = read_text(text[1:])
            except OSError as e:
                raise UsageError(f"--vars: cannot read {text[1:]}: {e.strerror}") from None
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as e:
            raise UsageError(
                f"--vars is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
            ) from None
        except RecursionError:
            raise UsageError(f"--vars: nested more than {MAX_NESTING} levels deep") from None
        if not isinstance(data, dict):
            raise UsageError("--vars must be a JSON object of names to values")
        try:
            check_nesting(data, "--vars")
        except ConversionError as e:
            raise UsageError(str(e)) from None
        if decls:
            try:
                env = build_environment(decls)
            except (
                DeclarationError
            ) as e:  # pragma: no cover - compile_expression reported it already
                raise UsageError(str(e)) from None
            try:
                data = {k: convert(v, env[k], k) if k in env else v for k, v in data.items()}
            except ConversionError as e:
                raise UsageError(f"--vars: {e}") from None
        variables.update(data)
    for item in args.var:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var takes NAME=EXPR, got {item!r}")
        try:
            variables[name.strip()] = compile_expression(text).evaluate({})
        except CompileError as e:
            raise UsageError(f"--var {name.strip()}:\n{e.rendered}") from None
        except EvaluationError as e:
            raise UsageError(f"--var {name.strip()}: {e}") from None
    return variables


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
