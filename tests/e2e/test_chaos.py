"""A short chaos run (`bench.chaos`): declarations on two `warroom run` processes over a scaled
clock while Redis pauses, connections are cut, Slack answers 429 and 5xx or loses answers after
acting, and one process is SIGKILLed and restarted; then every invariant of `bench.invariants`
holds."""

from __future__ import annotations

import pytest

from bench.chaos import Options, run
from tests.conftest import SCALED_CLOCK_PROCESSES

pytestmark = [pytest.mark.slow, SCALED_CLOCK_PROCESSES]


@pytest.mark.timeout(120)  # a violation keeps the run settling until its limit
def test_a_short_chaos_run_leaves_every_invariant_intact(redis_url, tmp_path) -> None:
    options = Options(declarations=12, seed=11, spread=8, scale=1200, settle=35)
    outcome = run(options, redis_url, tmp_path)
    assert outcome.violations == 0, f"\n{outcome.table()}\n\n{outcome.details()}"
