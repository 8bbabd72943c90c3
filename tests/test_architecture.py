"""The dependency rules in pyproject.toml hold: the domain is plain Python, listeners ->
service -> domain, agents/protocols never import the bot, and the test kit (``loopback``) is
given the app rather than importing it; the benchmarks and the test kit never import the
tests."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert exe, "import-linter is part of the test extra"
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken" in result.stdout


def test_nothing_is_built_at_import() -> None:
    """Importing every module creates no App, client, Redis connection or settings."""
    code = (
        "import importlib, pkgutil, threading, bot, agents, protocols, loopback\n"
        "before = threading.active_count()\n"
        "for pkg in (bot, agents, protocols, loopback):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "assert threading.active_count() == before, 'a thread was started at import'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "", "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert result.returncode == 0, result.stderr


def _imported(folder: Path) -> dict[str, set[str]]:
    """Top-level packages each Python file under ``folder`` imports, read with ``ast``."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_benchmarks_do_not_import_the_tests() -> None:
    imports = _imported(ROOT / "bench")
    assert imports, "no benchmark sources found"
    assert {path: names & {"tests"} for path, names in imports.items() if "tests" in names} == {}


def test_the_test_kit_imports_neither_the_app_nor_the_tests() -> None:
    imports = _imported(ROOT / "loopback")
    forbidden = {"bot", "agents", "protocols", "tests"}
    assert imports, "no loopback sources found"
    assert {path: names & forbidden for path, names in imports.items() if names & forbidden} == {}
