"""`rulekit diff OLD NEW`: what changed between two versions of a policy, in words.

Compares the compiled policies (so a .rk, its YAML twin and a compiled .json
compare alike, and layout or comments never show up) and says, for a
reviewer: facts, events, workflows, states and transitions added, removed or
changed ("awaiting_merchant: after REVIEW_WINDOW -> refunded: deadline 48h ->
72h"), and which changes can break live cases or the clients that send
events (a state removed while cases may sit in it, an event removed, a
payload field added or retyped, a fact made required).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from rulekit import policy
from rulekit.core.errors import CompileError
from rulekit.policy import ir


@dataclass(frozen=True)
class Change:
    where: str
    what: str
    breaking: bool = False

    def __str__(self) -> str:
        return f"{'BREAKING ' if self.breaking else ''}{self.where}: {self.what}"


class DiffInputError(Exception):
    """A side that cannot be read (message says which and why)."""


def read(spec: str, cwd: Path | None = None) -> ir.Policy:
    """A policy from a path, or from a git revision: ``REV:path`` (``HEAD~1:rules/x.rk``),
    the repository found from ``cwd`` (default: the working directory; the studio passes
    the file's folder rather than changing the process's).

    Raises :class:`DiffInputError` naming the side (``spec``) and what is wrong with it.
    """
    try:
        if not Path(spec).exists() and ":" in spec:
            text, fmt = _git_show(spec, cwd)
        else:
            text, fmt = policy.read(spec)
    except CompileError as e:  # RK0001: no such file, no kind of policy file, unreadable
        problem = e.diagnostics[0]
        raise DiffInputError(
            f"{spec}: {problem.message}" + (f": {problem.help}" if problem.help else "")
        ) from None
    try:
        return policy.loads(text, fmt, spec)
    except CompileError as e:
        raise DiffInputError(f"{spec} does not compile:\n{e.rendered}") from None


def _git_show(spec: str, cwd: Path | None = None) -> tuple[str, str]:
    """(text, format) of ``REV:path`` in git."""
    rev, _, name = spec.partition(":")
    if rev.startswith("-"):  # never an option of git's, whatever the caller passes
        raise DiffInputError(f"{spec}: not a file, nor a git revision (REV:path)")
    fmt = policy.format_of(name)
    done = subprocess.run(
        ["git", "show", "--end-of-options", f"{rev}:{name}"],
        capture_output=True,
        check=False,
        cwd=cwd,
    )
    if done.returncode != 0:
        error = done.stderr.decode("utf-8", "replace").strip()
        raise DiffInputError(f"{spec}: {error or 'git show failed'}")
    try:
        return done.stdout.decode("utf-8-sig"), fmt  # as source.read_text reads files
    except UnicodeDecodeError as e:
        raise DiffInputError(f"{spec}: not UTF-8 text (byte {e.start})") from None


def _trigger(t: ir.Transition) -> str:
    if t.kind == "event":
        return f"on {t.event}" + (f" when {t.guard.text}" if t.guard else "")
    if t.kind == "auto":
        return f"when {t.guard.text if t.guard else ''}"
    return ("after" if t.kind == "after" else "at") + f" -> {t.target or 'stay'}"


def _deadline(t: ir.Transition) -> str:
    if t.deadline is None:
        return ""
    start = f" from {t.start.text}" if t.start is not None else ""
    return t.deadline.text + start + t.adjusted


def _effects(t: ir.Transition) -> str:
    return (
        ", ".join(f"{e.effect}({', '.join(f'{k}: {v.text}' for k, v in e.args)})" for e in t.emits)
        or "none"
    )


def _sets(t: ir.Transition) -> str:
    return ", ".join(f"{a.fact} = {a.value.text}" for a in t.assigns) or "nothing"


def compare(old: ir.Policy, new: ir.Policy) -> list[Change]:
    out: list[Change] = []
    if old.version != new.version:
        out.append(Change("policy", f"version {old.version} -> {new.version}"))
    for path in sorted(old.facts.keys() | new.facts.keys()):
        a, b = old.facts.get(path), new.facts.get(path)
        if a is None and b is not None:
            out.append(
                Change(
                    "facts",
                    f"added {path}: {b.type}{'?' if b.optional else ''}",
                    breaking=not b.optional,
                )
            )
        elif b is None and a is not None:
            out.append(Change("facts", f"removed {path}", breaking=True))
        elif a is not None and b is not None:
            if a.type != b.type:
                out.append(Change("facts", f"{path}: type {a.type} -> {b.type}", breaking=True))
            if a.optional != b.optional:
                out.append(
                    Change(
                        "facts",
                        f"{path}: {'optional -> required' if b.optional is False else 'required -> optional'}",
                        breaking=not b.optional,
                    )
                )
    for name in sorted(old.constants.keys() | new.constants.keys()):
        ca, cb = old.constants.get(name), new.constants.get(name)
        if ca is None and cb is not None:
            out.append(Change("constants", f"added {name} = {cb.text}"))
        elif cb is None and ca is not None:
            out.append(Change("constants", f"removed {name}"))
        elif ca is not None and cb is not None and ca.text != cb.text:
            out.append(Change("constants", f"{name}: {ca.text} -> {cb.text}"))
    for name in sorted(old.conditions.keys() | new.conditions.keys()):
        # A named value or condition changes what every expression naming it computes.
        na, nb = old.conditions.get(name), new.conditions.get(name)
        if na is None and nb is not None:
            out.append(Change(f"{nb.kind}s", f"added {name} = {nb.expr.text}"))
        elif nb is None and na is not None:
            out.append(Change(f"{na.kind}s", f"removed {name}"))
        elif na is not None and nb is not None and na.expr.text != nb.expr.text:
            out.append(Change(f"{nb.kind}s", f"{name}: {na.expr.text} -> {nb.expr.text}"))
    for name in sorted(old.events.keys() | new.events.keys()):
        ea, eb = old.events.get(name), new.events.get(name)
        if ea is None and eb is not None:
            out.append(Change("events", f"added {name}"))
        elif eb is None and ea is not None:
            out.append(
                Change(
                    "events",
                    f"removed {name} (clients that send it will be refused)",
                    breaking=True,
                )
            )
        elif ea is not None and eb is not None:
            if set(eb.actors) < set(ea.actors):
                out.append(
                    Change(
                        "events",
                        f"{name}: no longer sent by {', '.join(sorted(set(ea.actors) - set(eb.actors)))}",
                        breaking=True,
                    )
                )
            elif set(ea.actors) != set(eb.actors):
                out.append(
                    Change(
                        "events",
                        f"{name}: senders {', '.join(ea.actors)} -> {', '.join(eb.actors)}",
                    )
                )
            fa, fb = {f.name: f.type for f in ea.payload}, {f.name: f.type for f in eb.payload}
            for field in sorted(fa.keys() | fb.keys()):
                if field not in fa:
                    out.append(
                        Change(
                            "events",
                            f"{name}: payload field {field}: {fb[field]} added",
                            breaking=True,
                        )
                    )
                elif field not in fb:
                    out.append(
                        Change("events", f"{name}: payload field {field} removed", breaking=True)
                    )
                elif fa[field] != fb[field]:
                    out.append(
                        Change(
                            "events",
                            f"{name}: payload field {field}: {fa[field]} -> {fb[field]}",
                            breaking=True,
                        )
                    )
    for name in sorted(old.workflows.keys() | new.workflows.keys()):
        wa, wb = old.workflows.get(name), new.workflows.get(name)
        if wa is None:
            out.append(Change(f"workflow {name}", "added"))
        elif wb is None:
            out.append(
                Change(
                    f"workflow {name}", "removed (its live cases have no workflow)", breaking=True
                )
            )
        else:
            out.extend(_workflow(wa, wb))
    return out


def _workflow(a: ir.Workflow, b: ir.Workflow) -> list[Change]:
    out: list[Change] = []
    w = f"workflow {a.name}"
    if a.initial != b.initial:
        out.append(Change(w, f"initial state {a.initial} -> {b.initial} (new cases only)"))
    for name in sorted(a.states.keys() - b.states.keys()):
        out.append(
            Change(f"{a.name}.{name}", "state removed (live cases may sit in it)", breaking=True)
        )
    for name in sorted(b.states.keys() - a.states.keys()):
        out.append(Change(f"{a.name}.{name}", "state added"))
    for name in sorted(a.states.keys() & b.states.keys()):
        sa, sb = a.states[name], b.states[name]
        where = f"{a.name}.{name}"
        if sa.final != sb.final:
            out.append(
                Change(
                    where, f"{'now final' if sb.final else 'no longer final'}", breaking=sb.final
                )
            )
        if sa.outcome != sb.outcome:
            out.append(Change(where, f"outcome {sa.outcome} -> {sb.outcome}"))
        if sa.waits != sb.waits:
            out.append(Change(where, f"waits {sa.waits!r} -> {sb.waits!r}"))
        if sa.assumption != sb.assumption:
            out.append(Change(where, f"assumption {sa.assumption!r} -> {sb.assumption!r}"))
        if sa.unbounded != sb.unbounded:
            out.append(Change(where, f"unbounded by design: {sa.unbounded} -> {sb.unbounded}"))
        ta = {_trigger(t): t for t in sa.transitions}
        tb = {_trigger(t): t for t in sb.transitions}
        for key in sorted(ta.keys() - tb.keys()):
            t = ta[key]
            breaking = t.kind == "event" and not any(x.event == t.event for x in sb.transitions)
            out.append(Change(where, f"removed: {key} -> {t.target or 'stay'}", breaking=breaking))
        for key in sorted(tb.keys() - ta.keys()):
            out.append(Change(where, f"added: {key} -> {tb[key].target or 'stay'}"))
        for key in sorted(ta.keys() & tb.keys()):
            x, y = ta[key], tb[key]
            head = (
                key
                if x.kind in ("event", "auto")
                else f"{'after' if x.kind == 'after' else 'at'} {_deadline(x)}"
            )
            if x.target != y.target:
                out.append(
                    Change(where, f"{head}: target {x.target or 'stay'} -> {y.target or 'stay'}")
                )
            if _deadline(x) != _deadline(y):
                out.append(Change(where, f"deadline {_deadline(x)} -> {_deadline(y)}"))
            if x.kind in ("after", "at") and (x.guard.text if x.guard else None) != (
                y.guard.text if y.guard else None
            ):
                out.append(
                    Change(
                        where,
                        f"{head}: guard {x.guard.text if x.guard else 'none'} -> "
                        f"{y.guard.text if y.guard else 'none'}",
                    )
                )
            if _effects(x) != _effects(y):
                out.append(Change(where, f"{head}: effects {_effects(x)} -> {_effects(y)}"))
            if x.assumption != y.assumption:
                out.append(
                    Change(where, f"{head}: assumption {x.assumption!r} -> {y.assumption!r}")
                )
            if _sets(x) != _sets(y):
                out.append(Change(where, f"{head}: sets {_sets(x)} -> {_sets(y)}"))
            if x.reschedule != y.reschedule:
                out.append(
                    Change(
                        where,
                        f"{head}: "
                        + ("now reschedules" if y.reschedule else "no longer reschedules")
                        + " the state's deadlines",
                    )
                )
            if set(x.actors) != set(y.actors):
                out.append(
                    Change(
                        where,
                        f"{head}: senders {', '.join(x.actors)} -> {', '.join(y.actors)}",
                        breaking=bool(set(x.actors) - set(y.actors)),
                    )
                )
            if x.cite != y.cite:
                out.append(Change(where, f"{head}: cite {x.cite!r} -> {y.cite!r}"))
    return out
