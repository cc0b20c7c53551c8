"""The one table, and the number formats in it."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    engine: str
    compile: str = ""
    compile_ratio: str = ""
    evals: str = ""
    evals_ratio: str = ""
    goal: str = ""
    passes: str = ""
    mismatches: str = ""


HEADER = Row(
    engine="engine",
    compile="compile/cond",
    compile_ratio="x (a)",
    evals="evals/s",
    evals_ratio="x (a)",
    goal="target / earlier",
    passes="passes",
    mismatches="mismatches",
)
_RIGHT = ("compile", "compile_ratio", "evals", "evals_ratio", "passes", "mismatches")


def render_table(rows: Sequence[Row], separator_before: Sequence[int] = ()) -> str:
    """Plain-text columns: names left-aligned, figures right-aligned."""
    fields = list(Row.__dataclass_fields__)
    table = [HEADER, *rows]
    widths = {f: max(len(getattr(r, f)) for r in table) for f in fields}

    def line(r: Row) -> str:
        cells = []
        for f in fields:
            text = getattr(r, f)
            cells.append(text.rjust(widths[f]) if f in _RIGHT else text.ljust(widths[f]))
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * widths[f] for f in fields)
    out = [line(HEADER), rule]
    for i, r in enumerate(rows):
        if i in separator_before:
            out.append(rule)
        out.append(line(r))
    return "\n".join(out)


def seconds(s: float) -> str:
    """A duration with a unit fit for its size: 180 ns, 42.1 µs, 3.20 ms, 1.234 s."""
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def rate(per_second: float) -> str:
    return f"{per_second:,.0f}"


def ratio(r: float) -> str:
    """A ratio to the baseline with two significant digits below 0.1 (0.0014x)."""
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"{r:.2g}x"


def machine_facts() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for text in f:
                if text.startswith("model name"):
                    model = ", " + text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.platform()}, {os.cpu_count()} CPUs{model}; {load()}"
    )


def load() -> str:
    """The 1-minute load average: above the CPU count, other jobs are taking turns with us."""
    try:
        return f"load average {os.getloadavg()[0]:.2f}"
    except OSError:
        return "load average unknown"


def exit_status(problems: Sequence[str]) -> int:
    """Print what went wrong (the first 20), if anything: 1 then, 0 otherwise."""
    if not problems:
        return 0
    print()
    print("PROBLEMS:")
    for text in problems[:20]:
        print(f"  {text}")
    return 1
