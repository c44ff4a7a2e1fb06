"""The import direction of DESIGN §2, checked with `ast`.

cli, mcp -> client -> store; runtime -> store; client -> runtime only to start a runner;
store -> models, errors only. Nothing imports cli or mcp.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kitaru"

# What each part of the package may import from kitaru (besides itself).
ALLOWED = {
    "errors": set(),
    "models": {"errors"},
    "store": {"errors", "models"},
    "runtime": {"errors", "models", "store"},
    "client": {"errors", "models", "store", "runtime"},
    "cli": {"errors", "models", "client"},
    "mcp": {"errors", "models", "client"},
    "__init__": {"errors", "models", "client", "runtime"},
}
# The client may use the runtime only to start runners and load flow targets.
CLIENT_RUNTIME_MODULES = {"kitaru.runtime.launch"}


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return [n for n in names if n == "kitaru" or n.startswith("kitaru.")]


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path) -> None:
    part = _part(path)
    allowed = ALLOWED[part] | {part}
    for name in _imports(path):
        parts = name.split(".")
        if len(parts) == 1 or parts[1].startswith("__"):
            continue  # `import kitaru` / `from kitaru import __version__`
        target = parts[1]
        if target not in ALLOWED and part == "__init__":
            continue  # `from kitaru import x` re-exports
        assert target in allowed, f"{path.name} ({part}) imports {name}"
        if part == "client" and target == "runtime":
            module = ".".join(parts[:3])
            assert module in CLIENT_RUNTIME_MODULES, f"client imports {name}"


def test_nothing_imports_cli_or_mcp() -> None:
    for path in SOURCES:
        if _part(path) in ("cli", "mcp"):
            continue
        for name in _imports(path):
            assert not name.startswith(("kitaru.cli", "kitaru.mcp")), f"{path} imports {name}"


def test_only_the_store_touches_the_store_folder() -> None:
    for path in SOURCES:
        if _part(path) == "store":
            continue
        text = path.read_text()
        assert "os.replace(" not in text and ".write_text(" not in text, path
