"""Installs that repeat: every distribution warroom needs, down to the last transitive one, is
locked in constraints.txt at the version installed here (the README's commands and CI install
with it), and every direct dependency is bounded below the next major version that could
break it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def _needed(name: str, extras: frozenset[str], seen: set[str]) -> None:
    """Every distribution `name` (with `extras`) pulls in, installed here, into `seen`."""
    dist = metadata.distribution(name)
    for text in dist.requires or []:
        req = Requirement(text)
        wanted = any(req.marker is None or req.marker.evaluate({"extra": e}) for e in extras)
        if req.marker is not None and not wanted:
            continue
        key = canonicalize_name(req.name)
        if key == "warroom":
            _needed("warroom", frozenset(req.extras) | {""}, seen)
            continue
        if key not in seen:
            seen.add(key)
            _needed(req.name, frozenset(req.extras) | {""}, seen)


def test_every_dependency_is_locked_at_the_installed_version() -> None:
    needed: set[str] = set()
    _needed("warroom", frozenset({"", "test", "charts"}), needed)
    locked = _locked()
    assert needed, "no dependency found: is warroom installed?"
    missing = sorted(needed - set(locked))
    assert not missing, f"not in constraints.txt: {missing}"
    drifted = {
        name: (locked[name], metadata.version(name))
        for name in needed
        if metadata.version(name) != locked[name]
    }
    assert not drifted, f"installed differs from constraints.txt (locked, installed): {drifted}"


def test_every_direct_dependency_has_an_upper_bound() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = project["dependencies"] + [
        r for group in project["optional-dependencies"].values() for r in group
    ]
    unbounded = [
        r
        for r in direct
        if not r.startswith("warroom") and not re.search(r"<|~=|==", str(Requirement(r).specifier))
    ]
    assert not unbounded, f"no upper bound: {unbounded}"


def test_the_readme_and_ci_install_with_the_lock() -> None:
    command = ".venv/bin/pip install -q -c constraints.txt -e '.[test]'"
    assert command in (ROOT / "README.md").read_text()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_every_install_the_project_tells_of_uses_the_lock() -> None:
    """Every `pip install` the docs or the program's own messages suggest installs with
    constraints.txt: one without it may pick releases the tests never ran on."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts += sorted(p for p in (ROOT / "bot").rglob("*.py"))
    unlocked = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in texts
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.search(r"\bpip install\b", line) and "-c constraints.txt" not in line
    ]
    assert not unlocked, unlocked


def test_the_model_sdk_is_held_to_the_minor_release_the_tests_passed_with() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (sdk,) = [Requirement(r) for r in project["dependencies"] if r.startswith("anthropic")]
    locked = _locked()["anthropic"]
    assert sdk.specifier.contains(locked)
    major, minor, *_ = (int(x) for x in locked.split("."))
    assert not sdk.specifier.contains(f"{major}.{minor + 1}.0"), sdk
