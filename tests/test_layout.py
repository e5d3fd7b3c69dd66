"""Guard rails of the architecture: import directions, where Docker lives, module sizes."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [ROOT / "grader", ROOT / "worker", ROOT / "images" / "harness" / "grader_harness"]
ENGINE_MODULE = ROOT / "grader" / "sandbox" / "engine.py"
MAX_LINES = 400


def modules(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, by statement or by ``import_module``/``__import__``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def _top(name: str) -> str:
    return name.partition(".")[0]


def test_the_guard_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself finds plain, from- and dynamic imports (so the tests below can fail)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import worker.tasks\nfrom worker import runtime\nimport importlib\n"
        "importlib.import_module('worker.sandbox')\n__import__('docker')\n"
    )
    assert {_top(n) for n in imported(sample)} == {"worker", "importlib", "docker"}


@pytest.mark.parametrize(
    "path", list(modules(ROOT / "grader")), ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_grader_never_imports_worker(path: Path) -> None:
    """``grader`` sends tasks by name; only the worker process imports ``worker``."""
    assert "worker" not in {_top(n) for n in imported(path)}


def test_only_the_engine_module_imports_docker() -> None:
    """Docker is imported in one module, which maps its exceptions onto our error tree."""
    importers = [
        p.relative_to(ROOT).as_posix()
        for p in modules(ROOT / "grader", ROOT / "worker")
        if "docker" in {_top(n) for n in imported(p)}
    ]
    assert importers == [ENGINE_MODULE.relative_to(ROOT).as_posix()]


def test_the_domain_imports_no_adapter_or_transport() -> None:
    """The domain is pure: no API, CLI, adapters, sandbox, settings or outside services."""
    forbidden = {"grader.api", "grader.cli", "grader.adapters", "grader.sandbox", "grader.settings"}
    outside = {"docker", "redis", "celery", "fastapi", "httpx", "worker"}
    for path in modules(ROOT / "grader" / "domain"):
        names = imported(path)
        assert not {n for n in names if n.startswith(tuple(forbidden))}, path
        assert not {_top(n) for n in names} & outside, path
        assert not _relative_imports(path) & {"api", "cli", "adapters", "sandbox", "settings"}, path


def _relative_imports(path: Path) -> set[str]:
    """``from ..x import`` names as ``x`` (only those that leave the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module:
            found.add(node.module.partition(".")[0])
    return found


@pytest.mark.parametrize(
    "path", list(modules(*PRODUCT)), ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_no_product_module_is_over_the_size_budget(path: Path) -> None:
    """One concept per module: split before it grows past the budget."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def test_only_the_cli_imports_the_client() -> None:
    """``grader.client`` is the platforms' side of the API: the service (domain, adapters,
    sandbox, API) and the worker never import it; the CLI's verbs do."""
    importers = []
    for path in modules(ROOT / "grader", ROOT / "worker"):
        names = imported(path) | {f"grader.{n}" for n in _relative_imports(path)}
        if any(n == "grader.client" or n.startswith("grader.client.") for n in names):
            importers.append(path.relative_to(ROOT).as_posix())
    outside = [p for p in importers if not p.startswith(("grader/client/", "grader/cli/"))]
    assert outside == []
    assert "grader/cli/remote.py" in importers
