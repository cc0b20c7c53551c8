"""A process the reliability tests start (and kill): it steps cases or fires deadlines.

Run as ``python worker.py '<json spec>'``. It opens the store, prints ``ready``, waits
for a line on stdin (so that several workers start at once), then works, printing one
JSON line per call the store returned from, flushed at once: what a caller would have
seen acknowledged had the process died right after. ``done`` ends a run that finished.

Specs:
- ``{"do": "steps", "url", "steps": [{"op": "open"|"send"|"update", ...}]}``
- ``{"do": "steps", "url", "threads": [[step, ...], ...]}``: each list in a thread of its
  own, all at once (on SQLite their writes share group commits); each line then also says
  how many transactions the group commit has committed so far, and the writes they held;
- ``{"do": "fire", "url", "now", "limit"}``: ``fire_due`` until nothing is due;
  with ``"quiet": true``, one line at the end instead: how many it fired and claimed.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from decimal import Decimal
from typing import Any

import rulekit
from rulekit.core.errors import StepRefused
from rulekit.stores import SqlStore, open_store


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


_said = threading.Lock()


def _say(line: dict[str, Any]) -> None:
    with _said:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def _step(store: SqlStore, step: dict[str, Any]) -> dict[str, Any]:
    op, key, at = step["op"], step.get("key"), _time(step.get("at"))
    try:
        if op == "open":
            facts = step["facts"]
            facts["order"]["amount"] = Decimal(facts["order"]["amount"])
            facts["order"]["paid_at"] = _time(facts["order"]["paid_at"])
            _, result = store.open(step["workflow"], facts, id=step["case"], key=key, at=at)
        elif op == "send":
            _, result = store.send(
                step["case"], step["event"], step["by"], step.get("data"), key=key, at=at
            )
        else:
            _, result = store.update(step["case"], step["changes"], key=key, at=at)
    except StepRefused as e:
        return {"id": step["id"], "refused": e.code}
    return {
        "id": step["id"],
        "case": step["case"],
        "seqs": [r.seq for r in result.records],
        "repeated": result.repeated,
        "state": result.state,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    store = open_store(spec["url"])
    store.register(rulekit.load(spec["policy"]))
    _say({"ready": True})
    sys.stdin.readline()
    if spec["do"] == "steps" and "threads" in spec:

        def run(steps: list[dict[str, Any]]) -> None:
            for step in steps:
                said = _step(store, step)
                dialect = store.dialect
                said["group"] = [getattr(dialect, "commits", 0), getattr(dialect, "writes", 0)]
                _say(said)

        threads = [threading.Thread(target=run, args=(steps,)) for steps in spec["threads"]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elif spec["do"] == "steps":
        for step in spec["steps"]:
            _say(_step(store, step))
    else:
        now = _time(spec["now"])
        counts = {"claimed": 0, "fired": 0}
        while fired := store.fire_due(now=now, limit=spec["limit"]):
            for f in fired:
                if spec.get("quiet"):
                    counts["claimed"] += 1
                    counts["fired"] += f.result is not None
                else:
                    _say(
                        {"case": f.case_id, "due": f.due.isoformat(), "fired": f.result is not None}
                    )
        if spec.get("quiet"):
            _say(counts)
    _say({"done": True})
    store.close()


if __name__ == "__main__":
    main()
