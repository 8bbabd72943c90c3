"""The dependency rules in pyproject.toml hold: the domain is plain Python, listeners ->
service -> domain, and agents/protocols never import the bot."""

from __future__ import annotations

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
        "import importlib, pkgutil, threading, bot, agents, protocols\n"
        "before = threading.active_count()\n"
        "for pkg in (bot, agents, protocols):\n"
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
