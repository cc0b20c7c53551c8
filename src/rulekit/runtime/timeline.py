"""A case's history as a readable timeline (for `rulekit test`, `simulate` and traces)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from rulekit.expr import stdlib
from rulekit.expr.convert import to_data
from rulekit.runtime.model import Record


def show_time(at: datetime, tz: tzinfo | None) -> str:
    """A time as timelines and messages show it: in the policy's zone ``tz`` when it has one."""
    local = at.astimezone(tz) if tz is not None else at
    return local.isoformat(sep=" ")


def describe(record: Record, tz: tzinfo | None = None) -> str:
    """One line (and its cause) for a history record."""
    when = show_time(record.at, tz)
    if record.kind == "open":
        return f"{when}  opened {record.workflow or ''} in `{record.target}`".replace(
            "  opened  in", "  opened in"
        )
    if record.kind == "update":
        changes = ", ".join(f"{k} = {stdlib.render(v)}" for k, v in flat(record.data or {}))
        return f"{when}  facts updated: {changes}"
    if record.kind == "advance":
        return f"{when}  time advanced"
    if record.kind == "clock":
        return f"{when}  {_clock_line(record, tz)}"
    if record.kind == "reschedule":
        return f"{when}  deadlines of `{record.source}` counted again" + "".join(
            f"\n      {written}: "
            + (f"due {show_time(due, tz)}" if due is not None else "not scheduled")
            for written, due in (record.data or {}).get("deadlines", ())
        )
    if record.kind == "event":
        head = f"{record.event} by {record.actor}"
        if record.data:
            head += (
                " (" + ", ".join(f"{k}: {stdlib.render(v)}" for k, v in record.data.items()) + ")"
            )
    elif record.kind == "deadline":
        head = "deadline"
    elif record.kind == "expiry":
        head = f"clock `{(record.data or {}).get('clock')}` ran out"
    else:
        head = "automatically"
    move = (
        f"`{record.source}` -> `{record.target}`"
        if record.target is not None
        else f"stays in `{record.source}`"
    )
    line = f"{when}  {head}: {move}"
    details = []
    if record.cause is not None and record.cause.guard is not None:
        reads = ", ".join(f"{k} = {stdlib.render(v)}" for k, v in record.cause.reads)
        details.append(f"because {record.cause.guard}" + (f" ({reads})" if reads else ""))
    if record.cite:
        details.append(f'cite "{record.cite}"')
    details += outcome_lines(record)
    return line + "".join(f"\n      {d}" for d in details)


def outcome_lines(record: Record) -> list[str]:
    """What a record did, a line each: the facts it set, the effects it emitted, and the
    rule it applied (``rulekit simulate`` and ``rulekit explain`` show them alike)."""
    out = [f"set {path} = {stdlib.render(value)}" for path, value in record.sets]
    for e in record.effects:
        args = ", ".join(f"{k}: {stdlib.render(v)}" for k, v in e.args.items())
        out.append(f"emit {e.name}({args})")
    if record.rule:
        out.append(f"rule at {record.rule}")
    return out


def _clock_line(record: Record, tz: tzinfo | None) -> str:
    """What happened to a clock: ``clock `response` paused in `waiting`: 15d left``."""
    data = record.data or {}
    action = str(data.get("action"))
    line = f"clock `{data.get('clock')}` {action}"
    if "by" in data:
        line += f" by {_length(data['by'])}"
    line += f" in `{record.source}`"
    if "due" in data:
        line += f": runs out at {show_time(data['due'], tz)}"
    elif "remaining" in data:
        line += f": {_length(data['remaining'])} left"
    elif action == "expired":
        line += ": its expiry does not apply there"
    return line


def _length(d: object) -> str:
    """A duration as a literal (`15d`), a calendar period as its text (`2 months`)."""
    if isinstance(d, str):
        return d
    return stdlib.format_duration_literal(d) if isinstance(d, timedelta) and d else "0s"


def render(records: Iterable[Record], tz: tzinfo | None = None) -> str:
    return "\n".join(describe(r, tz) for r in records)


def flat(data: object, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, dict):
                out.extend(flat(v, f"{prefix}{k}."))
            else:
                out.append((f"{prefix}{k}", v))
    return out


def record_data(r: Record) -> dict[str, Any]:
    """A record as JSON data (`rulekit simulate --json`, the HTTP service)."""
    return {
        "seq": r.seq,
        "at": r.at.isoformat(),
        "kind": r.kind,
        "source": r.source,
        "target": r.target,
        "event": r.event,
        "actor": r.actor,
        "data": to_data(dict(r.data)) if r.data else None,
        "cite": r.cite,
        "guard": r.cause.guard if r.cause else None,
        "reads": {k: to_data(v) for k, v in r.cause.reads} if r.cause else {},
        "effects": [{"name": e.name, "args": to_data(dict(e.args))} for e in r.effects],
        "rule": r.rule,
    }
