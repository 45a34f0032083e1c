"""The layers import downward only: the domain is pure, the runtime sees stores and actions
through ports and knows no HTTP; only the composition root picks implementations."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "oncely"

FORBIDDEN = {
    "domain": (
        "oncely.adapters",
        "oncely.runtime",
        "oncely.api",
        "oncely.cli",
        "oncely.app",
        "oncely.compose",
        "oncely.service",
        "fastapi",
        "uvicorn",
        "httpx",
        "psycopg",
        "sqlite3",
    ),
    "runtime": (
        "oncely.adapters",
        "oncely.api",
        "oncely.cli",
        "oncely.app",
        "oncely.compose",
        "fastapi",
        "uvicorn",
        "starlette",
    ),
    "ports": (
        "oncely.adapters",
        "oncely.runtime",
        "oncely.api",
        "oncely.cli",
        "oncely.app",
        "oncely.compose",
    ),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer: str) -> None:
    bad = []
    for path in sorted((SRC / layer).rglob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert bad == []
