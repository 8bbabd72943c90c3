"""How long `warroom run` takes to refuse to start, per reason, as a real process.

Each case runs `python -m bot.cli run` --runs times (default 5) with an environment that
stops it, and prints the median and the slowest wall time from spawn to exit, with the exit
code and the line it printed. The Python interpreter alone takes about 0.05 s to start.
Run: python -m bench.startup [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from loopback.server import free_port

BASE = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench-secret"}


def cases() -> list[tuple[str, dict[str, str]]]:
    return [
        ("no SLACK_BOT_TOKEN", {"SLACK_SIGNING_SECRET": "bench-secret"}),
        ("REDIS_URL without a scheme", {**BASE, "REDIS_URL": "localhost:6379"}),
        ("REDIS_URL with a bad port", {**BASE, "REDIS_URL": "redis://localhost:x/0"}),
        ("nothing answers at REDIS_URL", {**BASE, "REDIS_URL": f"redis://127.0.0.1:{free_port()}"}),
    ]


def run_once(env: dict[str, str]) -> tuple[float, int, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
    full.pop("REDIS_URL", None)
    full.update(env)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"], env=full, capture_output=True, text=True
    )
    return time.monotonic() - start, done.returncode, done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"| {'case':<30} | exit | {'median':>7} | {'slowest':>7} | what it says")
    print(f"|{'-' * 32}|------|{'-' * 9}|{'-' * 9}|{'-' * 40}")
    for name, env in cases():
        runs = [run_once(env) for _ in range(args.runs)]
        times = [t for t, _, _ in runs]
        _, code, said = runs[-1]
        lines = said.splitlines()
        shown = lines[-1] if len(lines) == 1 else f"{len(lines)} lines: {lines[-1][:60]}"
        print(
            f"| {name:<30} | {code:>4} | {statistics.median(times):>5.2f} s "
            f"| {max(times):>5.2f} s | {shown[:90]}"
        )


if __name__ == "__main__":
    main()
