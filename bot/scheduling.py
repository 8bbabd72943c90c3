"""Timers on APScheduler 3 with its RedisJobStore, shared by every process on one Redis.

APScheduler cannot share a job store between running schedulers, and a running scheduler
never re-reads the store for jobs other processes wrote. So every process starts its
scheduler *paused*: paused, `add_job` and `remove_job` still write to Redis, but no job is
processed. Exactly one process at a time holds a lease in Redis and resumes its scheduler;
it renews the lease, and wakes its scheduler every `poll_seconds` so jobs written by others
are picked up within about that long. When the lease holder dies, the lease lapses and
another process takes over. Each firing is also guarded by an idempotency key (in the
service), so an ex-leader that stalled past its lease cannot post twice.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import redis
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from bot.domain.timers import Timer, TimerKind
from bot.store import Keys, redis_guard, redis_resent

log = logging.getLogger(__name__)

# Stable import paths of the job functions (see bot/jobs.py).
JOB_FUNCTIONS = {
    TimerKind.DEADLINE: "bot.jobs:fire_deadline",
    TimerKind.NUDGE: "bot.jobs:fire_nudge",
    TimerKind.PROMISE: "bot.jobs:fire_promise",
    TimerKind.FOLLOW_UP: "bot.jobs:fire_follow_up",
    TimerKind.ACTION: "bot.jobs:fire_action",
    TimerKind.DIGEST: "bot.jobs:fire_digest",
    TimerKind.DELIVERY: "bot.jobs:fire_delivery",
}

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class SharedRedisJobStore(RedisJobStore):
    """RedisJobStore on our own client and keys, tolerant of jobs another process removed
    in the meantime (APScheduler's scheduler loop dies on the JobLookupError otherwise)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        super().__init__(jobs_key=keys.scheduler_jobs, run_times_key=keys.scheduler_run_times)
        self.redis.connection_pool.disconnect()
        self.redis = client

    def update_job(self, job):  # type: ignore[no-untyped-def]
        try:
            super().update_job(job)
        except JobLookupError:
            log.debug("job %s was removed by another process; not updating it", job.id)

    def remove_job(self, job_id):  # type: ignore[no-untyped-def]
        try:
            super().remove_job(job_id)
        except JobLookupError:
            log.debug("job %s was already removed", job_id)

    def shutdown(self) -> None:
        pass  # the client belongs to the runtime

    def job_ids(self) -> set[str]:
        return {k.decode() for k in self.redis.hkeys(self.jobs_key)}


class _SteadyScheduler(BackgroundScheduler):
    """APScheduler's background scheduler, whose loop outlives a Redis error.

    APScheduler 3 guards only `get_due_jobs`: an error from removing or updating a job it has
    just handed to the executor, or from reading the next run time, ends its loop thread for
    good, and the process would run no timer again until restarted, leader or not. A Redis
    failover raises exactly those for a few seconds. A job left in the store by such an error
    runs again later, which is safe: every firing is claimed once in Redis."""

    def _process_jobs(self) -> float | None:
        try:
            return super()._process_jobs()  # type: ignore[no-any-return]
        except redis.RedisError as e:
            log.warning("the job store failed mid-round (%s); trying again shortly", e)
            return 1.0  # seconds; the leader also wakes the loop at every renewal


class Scheduler:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        lease_seconds: float = 10.0,
        poll_seconds: float = 0.5,
        reconcile_seconds: float = 300.0,
        threads: int = 8,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.lease_ms = int(lease_seconds * 1000)
        self.poll_seconds = poll_seconds
        # The leader reconciles this often too: the safety net under a firing whose retry could
        # not be written, or a change whose timers were lost with a process.
        self.reconcile_seconds = reconcile_seconds
        self._next_reconcile = 0.0
        self._reconciling = threading.Lock()
        self.token = uuid.uuid4().hex
        self.store = SharedRedisJobStore(client, keys)
        self.aps = _SteadyScheduler(
            jobstores={"default": self.store},
            executors={"default": ThreadPoolExecutor(threads)},
            job_defaults={
                # Fire however late: a reminder whose time passed while no process ran
                # fires once when one starts (the default grace of 1 s would drop it).
                "misfire_grace_time": None,
                "coalesce": True,
                "max_instances": 1,
            },
            timezone=UTC,
        )
        self.aps.start(paused=True)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_leadership: Callable[[], None] = lambda: None
        # Set once this process, as leader, has reconciled the store.
        self.reconciled = threading.Event()

    # -- timers ---------------------------------------------------------------------------
    def schedule(self, timer: Timer) -> None:
        self.aps.add_job(
            JOB_FUNCTIONS[timer.kind],
            trigger=DateTrigger(run_date=timer.at),
            id=timer.id,
            name=f"{timer.kind} {timer.escalation} {timer.detail}",
            args=[self.keys.prefix, timer.escalation, timer.detail],
            replace_existing=True,
        )

    def schedule_many(self, timers: Iterable[Timer], chunk: int = 1000) -> None:
        """Write many timers in pipelined batches (reconciling thousands of escalations one
        `add_job` at a time would take two round trips each). Same format as add_job."""
        batch = list(timers)
        for start in range(0, len(batch), chunk):
            pipe = self.redis.pipeline(transaction=False)
            for timer in batch[start : start + chunk]:
                job = Job(
                    self.aps,
                    id=timer.id,
                    name=f"{timer.kind} {timer.escalation} {timer.detail}",
                    func=JOB_FUNCTIONS[timer.kind],
                    args=(self.keys.prefix, timer.escalation, timer.detail),
                    kwargs={},
                    trigger=DateTrigger(run_date=timer.at),
                    executor="default",
                    misfire_grace_time=None,
                    coalesce=True,
                    max_instances=1,
                    next_run_time=timer.at,
                )
                state = pickle.dumps(job.__getstate__(), self.store.pickle_protocol)
                pipe.hset(self.store.jobs_key, timer.id, state)
                pipe.zadd(self.store.run_times_key, {timer.id: timer.at.timestamp()})
            pipe.execute()
        if batch:
            self.aps.wakeup()

    def cancel_many(self, timer_ids: Iterable[str], chunk: int = 1000) -> None:
        ids = list(timer_ids)
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            pipe = self.redis.pipeline(transaction=False)
            pipe.hdel(self.store.jobs_key, *part)
            pipe.zrem(self.store.run_times_key, *part)
            pipe.execute()

    def cancel(self, timer_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.aps.remove_job(timer_id)

    def apply(self, before: Iterable[Timer], after: Iterable[Timer]) -> None:
        """Cancel the timers that are gone, schedule the new ones; Unavailable when Redis is
        away. Each is safe to send twice (a job written again is the same job; one removed
        again is gone), so one whose answer was lost is sent once more."""
        old = {t.id: t for t in before}
        new = {t.id: t for t in after}
        with redis_guard():  # Unavailable, like every other write, when Redis is away
            for timer_id in old.keys() - new.keys():
                redis_resent(lambda timer_id=timer_id: self.cancel(timer_id))
            for timer_id, timer in new.items():
                if old.get(timer_id) != timer:
                    redis_resent(lambda timer=timer: self.schedule(timer))

    def job_ids(self) -> set[str]:
        return self.store.job_ids()

    def run_due(self, now: datetime, *, rounds: int = 10) -> int:
        """Run, in this thread, every job due at `now`, earliest first, as the leader would;
        then those that became due meanwhile (a retry), for at most `rounds` passes.

        The scheduler's own step, for a process (a test, a drill) that moves its clock by
        hand instead of leading. Returns how many ran. A failing job is logged and removed,
        as APScheduler does with a date job it has run."""
        ran = 0
        for _ in range(rounds):
            due = self.store.get_due_jobs(now)
            if not due:
                break
            for job in due:
                # Removed before it runs, as APScheduler does: a job that schedules itself
                # again under the same id keeps its new run time.
                self.store.remove_job(job.id)
                try:
                    job.func(*job.args, **job.kwargs)
                except Exception:
                    log.exception("job %s failed", job.id)
                ran += 1
        return ran

    # -- leadership -----------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self._leader

    def start(self, on_leadership: Callable[[], None] = lambda: None) -> None:
        """Compete for the lease; `on_leadership` runs each time this process becomes leader
        (beside the jobs, which run at once), and every `reconcile_seconds` while it leads, to
        reconcile the store."""
        self._on_leadership = on_leadership
        self._thread = threading.Thread(target=self._lead, name="scheduler-lease", daemon=True)
        self._thread.start()

    def _lead(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except redis.RedisError as e:
                if self._leader:
                    log.warning("lost Redis while leading the scheduler (%s); pausing", e)
                    self._step_down()
            self._stop.wait(self.poll_seconds)

    def _tick(self) -> None:
        key = self.keys.scheduler_lease
        if self._leader:
            if self._renew(keys=[key], args=[self.token, self.lease_ms]):
                self.aps.wakeup()  # pick up jobs other processes wrote
                if time.monotonic() >= self._next_reconcile:
                    self._reconcile_aside()
            else:
                log.warning("scheduler lease lost; another process leads now")
                self._step_down()
        elif self.redis.set(key, self.token, nx=True, px=self.lease_ms):
            log.info("this process now runs the scheduler")
            self._leader = True
            # Jobs already in the store run at once (late reminders first); reconciling runs
            # beside them, and this thread goes on renewing the lease meanwhile.
            self.aps.resume()
            self._reconcile_aside()

    def _reconcile_aside(self) -> None:
        """Reconcile on a thread of its own (at 10,000 escalations it takes a while), unless
        a reconcile is already running."""
        if not self._reconciling.acquire(blocking=False):
            return
        self._next_reconcile = time.monotonic() + self.reconcile_seconds
        threading.Thread(target=self._reconcile, name="scheduler-reconcile", daemon=True).start()

    def _reconcile(self) -> None:
        try:
            self._on_leadership()
        except Exception:
            log.exception("reconciling timers failed; processing the store as it is")
        finally:
            self._reconciling.release()
            self.reconciled.set()

    def _step_down(self) -> None:
        self._leader = False
        self.aps.pause()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._leader:
            self._step_down()
            with contextlib.suppress(redis.RedisError):
                self._release(keys=[self.keys.scheduler_lease], args=[self.token])
        # Detached first: a scheduler shutting down leaves its paused state, and its thread,
        # woken at that moment, would run the due jobs of a store it no longer leads.
        self.aps.remove_jobstore("default", shutdown=False)
        self.aps.shutdown(wait=False)


class Every:
    """Run `work` every `seconds` on a thread of its own until `stop` (which waits for a run
    under way to finish); a run that raises is logged and the next one comes as usual."""

    def __init__(self, seconds: float, work: Callable[[], object], name: str) -> None:
        self.seconds = seconds
        self.work = work
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stopping.wait(self.seconds):
            try:
                self.work()
            except Exception as e:
                log.warning("%s: %s", self._thread.name, e)
