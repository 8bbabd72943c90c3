"""The scheduler's leader through Redis errors, on the real Redis: an error in the middle of
APScheduler's round (as a failover makes for a few seconds) does not end its loop, and
the timers that fall due afterwards still run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from bot import jobs
from bot.domain.timers import Timer, TimerKind
from bot.scheduling import Scheduler
from bot.store import Keys


class FailoverClient(redis.Redis):
    """Redis whose next `failures` HEXISTS fail as on a primary that just died: HEXISTS is
    what APScheduler's job store asks first when it removes a job it has run (and when it
    adds one)."""

    failures = 0

    def hexists(self, name, key):  # type: ignore[no-untyped-def, override]
        if self.failures:
            self.failures -= 1
            raise redis.ConnectionError("Error 111 connecting to the old primary")
        return super().hexists(name, key)


class Fired:
    """The timer handler of the deployment: records what fired."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.changed = threading.Condition()

    def fire_deadline(self, esc_id: str, step_id: str) -> None:
        with self.changed:
            self.steps.append(step_id)
            self.changed.notify_all()

    def wait_for(self, step: str, timeout: float = 5) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: step in self.steps, timeout)


@pytest.fixture
def leader(redis_url: str, prefix: str) -> Iterator[tuple[Scheduler, FailoverClient, Fired]]:
    client = FailoverClient.from_url(redis_url)
    fired = Fired()
    jobs.register(prefix, fired)  # type: ignore[arg-type]
    scheduler = Scheduler(client, Keys(prefix), lease_seconds=2, poll_seconds=0.1)
    scheduler.start()
    try:
        yield scheduler, client, fired
    finally:
        scheduler.stop()
        jobs.unregister(prefix, fired)  # type: ignore[arg-type]
        client.close()


def deadline(step: str, at: datetime) -> Timer:
    return Timer(
        id=f"esc-1:deadline:{step}", kind=TimerKind.DEADLINE, at=at, escalation="esc-1", detail=step
    )


def test_a_redis_error_mid_round_does_not_stop_the_timers(leader) -> None:
    scheduler, client, fired = leader
    assert scheduler.reconciled.wait(5)
    scheduler.schedule(deadline("assessment", datetime.now(UTC) + timedelta(milliseconds=300)))
    client.failures = 1  # removing the job it has just run fails
    assert fired.wait_for("assessment")

    # APScheduler's loop is still alive: a timer written afterwards runs too. (The job it
    # could not remove runs again, which its claim makes harmless.)
    scheduler.schedule(deadline("war_room", datetime.now(UTC) + timedelta(milliseconds=200)))
    assert fired.wait_for("war_room"), "the scheduler's loop died with the Redis error"
    assert fired.steps.count("war_room") == 1
