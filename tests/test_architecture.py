"""The dependency rules in pyproject.toml hold, and they bite: a copy of the tree with one
forbidden import added fails them. The test kit (`loopback`) is given the app rather than
importing it; the benchmarks and the test kit never import the tests; nothing is built at
import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "agents", "protocols", "loopback")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert exe, "import-linter is part of the test extra"
    # The copy's own packages first on the path, whatever is installed.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def test_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken" in result.stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the contracts, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_copy_keeps_the_contracts(tree: Path) -> None:
    """The probes below break a copy that is otherwise sound."""
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # I/O in the pure domain
        ("bot/domain/escalation.py", "import bot.memory", "bot: entry points"),
        ("bot/domain/timeline.py", "import redis", "The domain is plain Python"),
        # persistence in a renderer
        ("bot/slack/blocks.py", "import bot.store", "bot: entry points"),
        # a cycle: the store reaching up into a service
        ("bot/store.py", "import bot.services.room", "bot: entry points"),
        # a service reaching into another one beside it
        ("bot/services/room.py", "import bot.services.drafting", "services: one per concern"),
        # a service talking to Redis itself
        ("bot/services/home.py", "import redis", "Services see Slack"),
        # the agent reaching into the bot
        ("agents/offline.py", "import bot.store", "bot, then the agent"),
        # a renderer doing I/O
        ("bot/slack/parse.py", "import bot.slack.gateway", "slack: the gateway"),
    ],
)
def test_a_forbidden_import_breaks_the_contracts(
    tree: Path, module: str, line: str, broken: str
) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0, f"{line} in {module} broke no contract:\n{result.stdout}"
    assert broken in result.stdout


def test_a_module_outside_every_layer_breaks_the_contracts(tree: Path) -> None:
    (tree / "bot" / "helpers.py").write_text('"""Anything."""\n')
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "bot.helpers" in result.stdout


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
