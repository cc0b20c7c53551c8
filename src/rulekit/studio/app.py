"""The studio's HTTP API and its page (docs/studio.md; the routes are the contract with
the front end).

Each route is a thin layer over what the command line verbs run: ``check_source`` for
the diagnostics, :mod:`rulekit.analysis.graph` for the diagram, the engine on a
simulated clock for the simulations (:mod:`.sims`), :mod:`rulekit.tools.scenarios`
for the tests and :mod:`rulekit.analysis.diff` for comparing versions.
"""

from __future__ import annotations

import html
import os
import re
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from rulekit.analysis import check_source, diff, graph
from rulekit.core import diagnostics as diag
from rulekit.core.errors import CompileError, EvaluationError, StepRefused
from rulekit.expr import stdlib
from rulekit.policy import artifact, ir
from rulekit.service import problems
from rulekit.studio import files as fs
from rulekit.studio.gate import Gate, allowed_hosts
from rulekit.studio.models import (
    Advance,
    Checked,
    Compared,
    DiffRequest,
    Exported,
    Files,
    FileText,
    Graph,
    GraphRequest,
    OpenSim,
    PutFile,
    Ran,
    RunScenarios,
    Saved,
    SaveScenario,
    Send,
    Side,
    SimView,
    Source,
    Written,
)
from rulekit.studio.sims import (
    Sessions,
    Sim,
    parse_time,
    payload_fields,
    timeline,
    type_info,
    zone,
)
from rulekit.tools import scenarios

STATIC = Path(__file__).parent / "static"
#: the page's token element, whatever its content (the build may leave it empty)
TOKEN_META = re.compile(r'<meta\s+name="rulekit-studio-token"\s+content="[^"]*"\s*/?>')

#: what the ids of the old version's edges start with in a comparison
OLD = "old:"
#: the studio's own error codes, beside the service's (docs/studio.md)
STUDIO_PROBLEMS = {
    "outside_roots": (403, "The path is outside the folders the studio serves"),
    "not_editable": (403, "The studio does not read or write this file"),
    "bad_token": (403, "No valid studio token"),
    "forbidden_host": (403, "Not this studio's address"),
    "not_found": (404, "No such file or simulation"),
    "changed_on_disk": (409, "The file changed on disk"),
    "exists": (409, "The file exists already"),
    "invalid_policy": (422, "The policy has errors"),
}


class StudioProblem(problems.Problem):
    """An error answered as a problem document, with extra members (``etag``)."""

    def __init__(self, code: str, message: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(code, message)
        self.status = status
        self.extra = extra


def _answer(e: StudioProblem) -> Response:
    status, title = STUDIO_PROBLEMS.get(e.code, problems.PROBLEMS.get(e.code, (422, "")))
    status = e.status or status
    body = {
        "type": problems.TYPE_BASE + e.code,
        "title": title,
        "status": status,
        "detail": e.message,
        "code": e.code,
        **e.extra,
    }
    return JSONResponse(body, status, media_type=problems.MEDIA_TYPE)


def with_token(page: str, token: str) -> str:
    """The page with this process's token in its ``rulekit-studio-token`` meta element
    (added at the start of ``<head>`` when the page has none)."""
    meta = f'<meta name="rulekit-studio-token" content="{html.escape(token)}">'
    if TOKEN_META.search(page):
        return TOKEN_META.sub(lambda _: meta, page, count=1)
    return re.sub(r"<head[^>]*>", lambda m: m[0] + meta, page, count=1, flags=re.I)


def new_token() -> str:
    """A token for one studio process: what its page holds and every API call sends."""
    return secrets.token_urlsafe(32)


def create_app(roots: list[str], host: str, port: int, token: str) -> Gate:
    """The studio for the files under ``roots``, bound to ``host``:``port``: the routes
    behind the :class:`~rulekit.studio.gate.Gate` (``token``, Host, body size)."""
    app = FastAPI(title="rulekit studio", docs_url=None, redoc_url=None, openapi_url=None)
    problems.install(app)

    @app.exception_handler(StudioProblem)
    async def _studio(request: Request, e: StudioProblem) -> Response:
        return _answer(e)

    app.state.token = token
    _routes(app, fs.Roots(roots), Sessions())
    return Gate(app, token, allowed_hosts(host, port))


def _policy(source: Source) -> ir.Policy:
    result = check_source(source.text, source.format, source.path)
    if result.policy is None:
        errors = [d for d in result.diagnostics if d.severity == "error"]
        first = errors[0].message if errors else "it does not compile"
        raise StudioProblem("invalid_policy", f"{source.path}: {first}")
    return result.policy


def _workflow(policy: ir.Policy, name: str | None) -> ir.Workflow:
    if name is None and policy.workflows:
        return next(iter(policy.workflows.values()))
    wf = policy.workflows.get(name) if name is not None else None
    if wf is None:
        raise StudioProblem(
            "unknown_workflow", f"no workflow {name!r} (workflows: {', '.join(policy.workflows)})"
        )
    return wf


def _model(policy: ir.Policy) -> dict[str, Any]:
    """The policy as the front end needs it: workflows and states, facts, events, actors."""
    return {
        "name": policy.name,
        "version": policy.version,
        "hash": policy.hash or artifact.to_json(policy)["hash"],
        "zone": policy.timezone,
        "workflows": [
            {
                "name": wf.name,
                "initial": wf.initial,
                "states": [
                    {"name": s.name, "final": s.final, "line": s.at.line, "column": s.at.column}
                    for s in wf.states.values()
                ],
            }
            for wf in policy.workflows.values()
        ],
        "facts": [
            {
                "path": f.path,
                **type_info(policy, f.type),
                "optional": f.optional,
                # the language has no documentation of a fact to show yet (a comment is not one)
                "doc": None,
                "by": list(f.by),
            }
            for f in policy.facts.values()
        ],
        "events": [
            {"name": e.name, "by": list(e.actors), "payload": payload_fields(policy, e.payload)}
            for e in policy.events.values()
        ],
        "actors": list(policy.actors),
    }


def _graph(wf: ir.Workflow) -> dict[str, Any]:
    return {
        "dot": graph.dot([wf], ids=True),
        "nodes": [
            {"id": n.id, "state": n.state, "line": n.line, "column": n.column}
            for n in graph.nodes(wf)
        ],
        "edges": [
            {
                "id": e.id,
                "from": e.source,
                "to": e.target,
                "kind": e.kind,
                "label": e.label,
                "line": e.line,
                "column": e.column,
                "cite": e.cite,
            }
            for e in graph.edges(wf)
        ],
    }


def _routes(app: FastAPI, roots: fs.Roots, sessions: Sessions) -> None:
    def resolve(path: str) -> Path:
        try:
            return roots.resolve(path)
        except fs.OutsideRoots as e:
            raise StudioProblem("outside_roots", str(e)) from None

    def editable(path: str) -> Path:
        try:
            return roots.editable(path)
        except fs.OutsideRoots as e:
            raise StudioProblem("outside_roots", str(e)) from None
        except fs.NotEditable as e:
            raise StudioProblem("not_editable", str(e)) from None

    def write(found: Path, data: bytes, given: str) -> None:
        try:
            found.parent.mkdir(parents=True, exist_ok=True)
            fs.write_atomically(found, data)
        except OSError as e:
            raise StudioProblem(
                "invalid_request", f"cannot write {given}: {e.strerror or e}"
            ) from None

    def sim(id: str) -> Sim:
        found = sessions.get(id)
        if found is None:
            raise StudioProblem("not_found", f"no simulation {id!r} (it may have been dropped)")
        return found

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        page = with_token((STATIC / "index.html").read_text(encoding="utf-8"), app.state.token)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/assets/{name:path}", include_in_schema=False)
    def asset(name: str) -> Response:
        base = (STATIC / "assets").resolve()
        found = (base / name).resolve()
        if not found.is_relative_to(base) or not found.is_file():
            raise StudioProblem("not_found", f"no asset {name!r}")
        return FileResponse(found, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    @app.get("/api/files", response_model=Files)
    def list_files() -> dict[str, Any]:
        policies, found = [], []
        for f in roots.files((".rk", ".yaml", ".yml")):
            rel = roots.relative(f)
            if f.suffix == ".rk":
                policies.append({"path": rel, "format": "rk"})
            elif scenarios.is_scenario_file(f):
                found.append({"path": rel, "policy": _named_policy(f, roots)})
            elif "policy" in (scenarios.top_level_keys(f.read_text("utf-8", "replace")) or ()):
                policies.append({"path": rel, "format": "yaml"})
        return {
            "roots": [str(r) for r in roots.paths],
            "policies": policies,
            "scenarios": found,
        }

    @app.get("/api/file", response_model=FileText)
    def read_file(path: str) -> dict[str, Any]:
        found = editable(path)
        if not found.is_file():
            raise StudioProblem("not_found", f"no file {path!r}")
        if found.stat().st_size > fs.MAX_FILE:
            raise StudioProblem(
                "payload_too_large", f"{path} is larger than {fs.MAX_FILE} bytes: not a policy"
            )
        data = found.read_bytes()
        return {
            "path": roots.relative(found),
            "text": data.decode("utf-8-sig", "replace"),
            "format": "yaml" if found.suffix.lower() in (".yaml", ".yml") else "rk",
            "etag": fs.etag(data),
        }

    @app.put("/api/file", response_model=Written)
    def write_file(body: PutFile) -> dict[str, Any]:
        found = editable(body.path)
        if body.etag is not None:
            current = fs.etag(found.read_bytes()) if found.is_file() else None
            if current != body.etag:
                raise StudioProblem(
                    "changed_on_disk",
                    f"{body.path} changed on disk since it was read",
                    etag=current,
                )
        data = body.text.encode("utf-8")
        write(found, data, body.path)
        return {"etag": fs.etag(data)}

    @app.post("/api/check", response_model=Checked)
    def check(body: Source) -> dict[str, Any]:
        result = check_source(body.text, body.format, body.path)
        lines = result.source.text.splitlines()
        return {
            "ok": result.policy is not None,
            "diagnostics": [
                d.to_dict()
                | {
                    "rendered": diag.render(
                        d, lines[d.line - 1] if 0 < d.line <= len(lines) else None
                    )
                }
                for d in result.diagnostics
            ],
            "policy": _model(result.policy) if result.policy is not None else None,
        }

    @app.post("/api/graph", response_model=Graph)
    def graph_of(body: GraphRequest) -> dict[str, Any]:
        return _graph(_workflow(_policy(body), body.workflow))

    @app.post("/api/sim", status_code=201, response_model=SimView)
    def open_sim(body: OpenSim) -> dict[str, Any]:
        policy = _policy(body)
        _workflow(policy, body.workflow)
        try:
            opened = Sim(policy, body.path, body.workflow, body.facts, parse_time(body.at), body.by)
        except StepRefused as e:  # the facts do not fit the policy: 422 whatever the code
            raise StudioProblem(e.code, e.message, status=422) from None
        except (ValueError, EvaluationError, stdlib.CelError) as e:
            raise StudioProblem("invalid_request", str(e)) from None
        sessions.add(opened)
        return opened.view()

    @app.post("/api/sim/{id}/send", response_model=SimView)
    def send(id: str, body: Send) -> dict[str, Any]:
        s = sim(id)
        try:
            s.send(body.event, body.by, body.payload, parse_time(body.at) if body.at else None)
        except (ValueError, EvaluationError, stdlib.CelError) as e:
            raise StudioProblem("invalid_request", str(e)) from None
        return s.view()

    @app.post("/api/sim/{id}/advance", response_model=SimView)
    def advance(id: str, body: Advance) -> dict[str, Any]:
        s = sim(id)
        try:
            if body.by is not None:
                s.advance_by(body.by)
            elif body.to is not None:
                s.advance(parse_time(body.to))
            else:
                s.advance_to_next_deadline()
        except (ValueError, EvaluationError, stdlib.CelError) as e:
            raise StudioProblem("invalid_request", str(e)) from None
        except StepRefused as e:
            raise StudioProblem(e.code, e.message) from None
        return s.view()

    @app.get("/api/sim/{id}", response_model=SimView)
    def get_sim(id: str) -> dict[str, Any]:
        return sim(id).view()

    @app.get("/api/sim/{id}/scenario", response_model=Exported)
    def export(id: str) -> dict[str, Any]:
        s = sim(id)
        # for a file saved beside the policy
        policy_name = Path(s.path).name
        return {"yaml": s.scenario(policy_name, _scenario_name(s)), "filename": _filename(s)}

    @app.post("/api/sim/{id}/scenario", response_model=Saved)
    def save(id: str, body: SaveScenario) -> dict[str, Any]:
        s = sim(id)
        target = editable(body.path)
        if target.exists() and not body.overwrite:
            raise StudioProblem(
                "exists", f"{body.path} exists: send `overwrite: true` to replace it"
            )
        policy_file = resolve(s.path)
        relative = Path(os.path.relpath(policy_file, target.parent)).as_posix()
        data = s.scenario(relative, _scenario_name(s)).encode("utf-8")
        write(target, data, body.path)
        return {"path": roots.relative(target), "etag": fs.etag(data)}

    @app.post("/api/scenarios/run", response_model=Ran)
    def run_scenarios(body: RunScenarios) -> dict[str, Any]:
        try:
            found = scenarios.discover([str(resolve(p)) for p in body.paths])
        except FileNotFoundError as e:
            raise StudioProblem("not_found", str(e)) from None
        results: list[dict[str, Any]] = []
        policies: dict[Path, ir.Policy] = {}
        for f in found:
            rel = roots.relative(f)
            try:
                sf = scenarios.read(f)
                ran = scenarios.run_file(sf, policies)
            except scenarios.ScenarioFileError as e:
                results.append(_failed(rel, "(file)", str(e)))
                continue
            except CompileError as e:
                results.append(_failed(rel, "(policy)", e.rendered))
                continue
            for r in ran:
                failure = r.failure
                results.append(
                    {
                        "file": rel,
                        "name": r.scenario,
                        "passed": failure is None,
                        "message": failure.message if failure else None,
                        "timeline": timeline(failure.case, zone(policies[sf.policy_path]))
                        if failure and failure.case
                        else [],
                    }
                )
        passed = sum(r["passed"] for r in results)
        return {"passed": passed, "failed": len(results) - passed, "results": results}

    @app.post("/api/diff", response_model=Compared)
    def compare(body: DiffRequest) -> dict[str, Any]:
        old, new = _side(body.old, resolve, roots), _side(body.new, resolve, roots)
        return _compared(old, new, body.workflow)


def _named_policy(path: Path, roots: fs.Roots) -> str | None:
    """The policy a scenario file names, relative to the roots (None when it names none
    there)."""
    try:
        sf = scenarios.read(path)
        return roots.relative(sf.policy_path)
    except (scenarios.ScenarioFileError, fs.OutsideRoots, OSError):
        return None


def _scenario_name(s: Sim) -> str:
    return f"{s.case.workflow.name}: studio simulation ending in {s.case.state.name}"


def _filename(s: Sim) -> str:
    return f"{Path(s.path).stem}.{s.case.workflow.name}.scenarios.yaml"


def _failed(file: str, name: str, message: str) -> dict[str, Any]:
    return {"file": file, "name": name, "passed": False, "message": message, "timeline": []}


def _side(side: Side, resolve: Any, roots: fs.Roots) -> ir.Policy:
    """One version to compare, compiled (422 when it does not compile)."""
    try:
        if side.text is not None:
            fmt = side.format or "rk"
            return _policy(Source(text=side.text, format=fmt, path=f"policy.{fmt}"))
        assert side.path is not None
        found = resolve(side.path)
        if side.git is not None:
            if side.git.startswith("-") or ":" in side.git:
                raise StudioProblem("invalid_request", f"{side.git!r} is not a git revision")
            # git finds the repository from the file's folder; the path is the file's there
            return diff.read(f"{side.git}:./{found.name}", cwd=found.parent)
        return diff.read(str(found))
    except diff.DiffInputError as e:
        raise StudioProblem("invalid_policy", str(e)) from None


def _edge_of(
    what: str,
    state: str,
    old_edges: list[graph.Edge],
    new_edges: list[graph.Edge],
    marked: dict[str, str],
) -> str | None:
    """The edge a change of ``state`` is on: named by its trigger, as ``rulekit diff``
    writes it (``removed: on withdraw -> withdrawn``: the old version's edge), or else
    the one edge of the state that is marked added or changed (None when it is not one).
    A removed edge's id is the old version's, marked :data:`OLD` (it is not in the new
    diagram, whose edges may have taken its number)."""
    for prefix, pool, mark in (("removed: ", old_edges, OLD), ("added: ", new_edges, "")):
        if what.startswith(prefix):
            return next(
                (
                    mark + e.id
                    for e in pool
                    if e.source == state and what.startswith(f"{prefix}{e.trigger} -> ")
                ),
                None,
            )
    named = [e.id for e in new_edges if e.source == state and what.startswith(f"{e.trigger}: ")]
    if len(named) == 1:
        return named[0]
    here = [id for id, source in marked.items() if source == state]
    return here[0] if len(here) == 1 else None


def _compared(old: ir.Policy, new: ir.Policy, workflow: str | None) -> dict[str, Any]:
    """The changes, and the new version's diagram with each edge marked added, changed or
    removed (edges matched by state and trigger, compared by label)."""
    changes = diff.compare(old, new)
    wf = _workflow(new, workflow)
    before = old.workflows.get(wf.name)
    new_edges = graph.edges(wf)
    old_edges = graph.edges(before) if before is not None else []

    olds = {(e.source, e.trigger): e for e in old_edges}
    news = {(e.source, e.trigger): e for e in new_edges}
    added = [e.id for k, e in news.items() if k not in olds]
    changed = [e.id for k, e in news.items() if k in olds and olds[k].label != e.label]
    removed = [e for k, e in olds.items() if k not in news]
    marked = {e.id: e.source for e in new_edges if e.id in added or e.id in changed}
    names = new.workflows.keys() | old.workflows.keys()
    out_changes = []
    for c in changes:
        kind, workflow, state, edge = c.where, None, None, None
        if c.where.startswith("workflow "):
            kind, workflow = "workflow", c.where.removeprefix("workflow ")
        elif c.where.partition(".")[0] in names:
            workflow, _, state = c.where.partition(".")
            kind = "state"
            if workflow == wf.name:
                edge = _edge_of(c.what, state, old_edges, new_edges, marked)
        out_changes.append(
            {
                "kind": kind,
                "breaking": c.breaking,
                "text": str(c),
                "workflow": workflow,
                "edge": edge,
                "state": state,
            }
        )
    drawn = _graph(wf)
    drawn["removed_edges"] = [{"from": e.source, "to": e.target, "label": e.label} for e in removed]
    return {
        "changes": out_changes,
        "breaking": any(c.breaking for c in changes),
        "graph": drawn,
        "added": added,
        "changed": changed,
        "removed": [OLD + e.id for e in removed],
    }
