"""The source tree's layers: each package imports only from the packages below it.

The layers, bottom to top, are listed in docs/architecture.md and in each
package's docstring. This test reads every module's imports (lazy ones inside
functions included) and fails on an import that runs up or sideways, and on a
core-install module that imports the web stack or a database driver.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rulekit

PACKAGE = Path(rulekit.__file__).parent

#: package -> the packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "expr": {"core"},
    "policy": {"core", "expr"},
    "analysis": {"core", "expr", "policy"},
    "runtime": {"core", "expr", "policy"},
    "stores": {"core", "expr", "policy", "runtime"},
    # the effect relay: a Store's outbox, delivered (it reads relay.yaml as policy YAML is read)
    "relay": {"core", "expr", "policy", "runtime"},
    "service": {"core", "expr", "policy", "runtime", "stores", "relay"},
    "tools": {"core", "expr", "policy", "analysis", "runtime", "stores", "relay"},
    # the studio's app, beside the service (it reuses the service's problem documents)
    "studio": {"core", "expr", "policy", "analysis", "runtime", "stores", "service", "tools"},
    # the command line and the public API at the top may import every layer
    "cli": {
        "core",
        "expr",
        "policy",
        "analysis",
        "runtime",
        "stores",
        "relay",
        "service",
        "tools",
        "studio",
    },
    "": {
        *("core", "expr", "policy", "analysis", "runtime", "stores", "relay", "service"),
        *("tools", "studio"),
    },
}

#: third-party packages only the ``server``, ``postgresql``, ``lsp`` and ``relay`` extras install
LSP_EXTRA = {"pygls", "lsprotocol"}
RELAY_EXTRA = {"aiohttp", "nats", "prometheus_client"}
EXTRAS = (
    {"fastapi", "starlette", "pydantic", "uvicorn", "prometheus_client", "psycopg"}
    | LSP_EXTRA
    | RELAY_EXTRA
)
#: where each may be imported (the language server's features stay free of the protocol)
EXTRAS_ALLOWED = {
    "service": EXTRAS - {"psycopg", "aiohttp", "nats"} - LSP_EXTRA,
    "studio": EXTRAS - {"psycopg", "aiohttp", "nats"} - LSP_EXTRA,
    "relay": RELAY_EXTRA,
    "cli.relay": {"prometheus_client"},
    "stores.postgres": {"psycopg"},
    "tools.lsp.server": LSP_EXTRA,
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(["rulekit", *parts]), path))
    return found


MODULES = dict(_modules())


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, resolved to the module it loads."""
    out = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for a in node.names:  # `from rulekit import policy` loads rulekit.policy
                sub = f"{base}.{a.name}"
                out.append((node.lineno, sub if sub in MODULES else base))
    return out


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_layers_cover_every_package() -> None:
    assert {_layer(m) for m in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_down_the_layers(name: str) -> None:
    mine = _layer(name)
    wrong = []
    for line, target in _imports(name, MODULES[name]):
        top = target.split(".")[0]
        if top == "rulekit":
            theirs = _layer(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"line {line}: {target} ({theirs or 'the package root'})")
            elif theirs == "" and mine != "":
                wrong.append(f"line {line}: {target} (the package root imports every layer)")
        elif top in EXTRAS:
            allowed = EXTRAS_ALLOWED.get(mine, set()) | EXTRAS_ALLOWED.get(
                name.removeprefix("rulekit."), set()
            )
            if top not in allowed:
                wrong.append(f"line {line}: {top} (only an extra installs it)")
    assert not wrong, f"{name} ({mine or 'root'}) may import only {sorted(ALLOWED[mine])}:\n" + (
        "\n".join(wrong)
    )


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    """The test itself: an import of the service from the runtime is found."""
    bad = tmp_path / "engine.py"
    bad.write_text("from rulekit.service.app import create_app\n", encoding="utf-8")
    assert _imports("rulekit.runtime.engine", bad) == [(1, "rulekit.service.app")]
    assert _layer("rulekit.service.app") not in ALLOWED["runtime"]
