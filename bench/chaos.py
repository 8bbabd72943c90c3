"""A chaos run: many escalations declared on two `warroom run` processes over a scaled clock
while faults land at random, then the invariants of `bench.invariants` checked and printed as a
table (exit 1 when one is violated).

Two real processes share one real Redis through `loopback.redis_proxy` and talk to the loopback
Slack. `/escalate` goes to each in turn (to the other while one is down, as a load balancer
would). Meanwhile a seeded injector pauses Redis for a few hundred ms, cuts a connection, answers
429 or 5xx to a random Web API call, or carries a call out and loses its answer
(`chat.postMessage`, `conversations.create`, `conversations.invite`); one process is SIGKILLed
just after it took a declaration and restarted a few seconds later; half the declarers mark a
step done. Then the faults stop, the run settles (until every declaration is answered and every
due reminder posted, or `--settle` runs out), the processes stop, and what is left is checked.

Run: python -m bench.chaos [--declarations 40] [--seed 7] [--scale 600] [--spread 30]
(REDIS_URL, default 127.0.0.1:6379, under a throwaway key prefix removed afterwards).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import redis
import yaml

from bench import invariants
from bench.common import REDIS_URL, SECRET, drop_prefix
from bench.invariants import Declared, Reminders, Row, Told, World
from bot.store import Keys, Store
from loopback.harness import WarroomProcess, warroom, warroom_env
from loopback.redis_proxy import RedisProxy
from loopback.slack import FakeSlack
from protocols.loader import load_protocol

VP, ICS = "U0VPSUPRT", ("U0INCCMDR", "U0OTHERIC")
EXEC_CHANNEL = "exec-escalations"
# Where a 429 or a 5xx may land: every method a room and its reminders use.
METHODS = (
    "conversations.create",
    "conversations.invite",
    "chat.postMessage",
    "conversations.setTopic",
    "pins.add",
    "conversations.history",
    "users.conversations",
)
# Calls Slack carries out and then loses the answer to.
LOST = ("chat.postMessage", "conversations.create", "conversations.invite")
FAULTS = {  # kind: weight
    "redis paused": 3,
    "redis connection cut": 1,
    "slack 429": 2,
    "slack 5xx": 2,
    "answer lost": 3,
}
STEP_CLICKED = "customer_communication"  # the step declarers mark done


@dataclass(frozen=True)
class Options:
    declarations: int = 40
    seed: int = 7
    spread: float = 30.0  # seconds the declarations are sent over
    scale: float = 600.0  # WARROOM_CLOCK_SCALE: 15 min -> 1.5 s, 1 h -> 6 s, 2 h -> 12 s
    fault_gap: float = 0.5  # mean seconds between two faults
    settle: float = 60.0  # longest wait, faults off, for the answers and the reminders
    creates_per_minute: int = 60  # the bot's pacing of channel creation
    kill: bool = True  # SIGKILL one process mid-run, and restart it
    restart_after: float = 3.0
    # How long a process building a room holds it (WARROOM_DECLARATION_LEASE_SECONDS): a room
    # whose process died is finished by another this long after, within the run.
    declaration_lease: float = 5.0
    clicks: float = 0.5  # share of the rooms where the declarer marks a step done
    keep: bool = False  # leave the run's Redis keys (its prefix is printed) to look into


@dataclass
class Outcome:
    rows: list[Row]
    totals: list[tuple[str, str]]

    @property
    def violations(self) -> int:
        return sum(len(r.problems) for r in self.rows)

    def table(self) -> str:
        lines = [
            f"| {'invariant':<60} | {'checked':>7} | {'violations':>10} |",
            f"|{'-' * 62}|{'-' * 9}|{'-' * 12}|",
        ]
        lines += [f"| {r.name:<60} | {r.checked:>7} | {len(r.problems):>10} |" for r in self.rows]
        lines += ["", f"| {'run':<44} | {'value':<60} |", f"|{'-' * 46}|{'-' * 62}|"]
        lines += [f"| {k:<44} | {v:<60} |" for k, v in self.totals]
        return "\n".join(lines)

    def details(self, limit: int = 40) -> str:
        problems = [f"- {r.name}: {p}" for r in self.rows for p in r.problems]
        more = [f"... and {len(problems) - limit} more"] if len(problems) > limit else []
        return "\n".join(problems[:limit] + more)


@dataclass
class _Injected:
    pauses: list[float] = field(default_factory=list)
    kill: str = ""


class ChaosRun:
    """One run: the loopback Slack, the Redis proxy, two processes; declarations, faults."""

    def __init__(self, options: Options, redis_url: str, folder: Path) -> None:
        self.options = options
        self.redis_url = redis_url
        self.folder = folder
        self.prefix = f"warroom-chaos-{uuid.uuid4().hex[:8]}"
        self.rng = random.Random(options.seed)
        self.protocol = load_protocol()
        self.declared: list[Declared] = []
        self.clicked: set[int] = set()
        self.injected = _Injected()
        self.procs: dict[str, WarroomProcess] = {}
        self._alive: set[str] = set()
        self._lock = threading.Lock()

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> Outcome:
        started = time.monotonic()
        upstream = urlsplit(self.redis_url)
        proxy = RedisProxy(upstream.port or 6379, upstream.hostname or "127.0.0.1").start()
        client = redis.Redis.from_url(self.redis_url)
        store = Store(client, Keys(self.prefix))
        try:
            with FakeSlack() as fake:
                self.fake, self.proxy = fake, proxy
                self._seed(fake)
                self._start(fake, proxy)
                stop = threading.Event()
                injector = threading.Thread(target=self._inject, args=(stop,), daemon=True)
                injector.start()
                restart = self._declare_all()
                stop.set()
                injector.join()
                fake.clear_faults()
                proxy.clear()
                if restart is not None:
                    restart.join()
                self._settle(store)
                at = datetime.now(UTC)
                for proc in self.procs.values():
                    proc.stop()
                world = self._observe(store, at, memory=self._export())
                rows, due = self._check(world)
                return Outcome(rows, self._totals(fake, proxy, world, due, started))
        finally:
            for proc in self.procs.values():
                proc.stop()
            proxy.stop()
            client.close()
            if not self.options.keep:
                drop_prefix(self.redis_url, self.prefix)

    def _seed(self, fake: FakeSlack) -> None:
        for user, name in ((VP, "victoria"), (ICS[0], "ivan"), (ICS[1], "olga")):
            fake.add_user(user, name)
        for i in range(self.options.declarations):
            fake.add_user(_declarer(i), f"declarer{i}")
        fake.add_channel(EXEC_CHANNEL, members=[VP])
        (self.folder / "warroom.yaml").write_text(
            yaml.safe_dump(
                {"vp": [VP], "incident_commanders": list(ICS), "exec_channel": EXEC_CHANNEL}
            )
        )

    def _env(self, fake: FakeSlack, redis_url: str) -> dict[str, str]:
        return warroom_env(
            fake,
            redis_url,
            self.prefix,
            self.folder,
            self.folder / "warroom.yaml",
            signing_secret=SECRET,
            WARROOM_CLOCK_SCALE=self.options.scale,
            WARROOM_LEASE_SECONDS=2,
            WARROOM_SCHEDULER_POLL=0.2,
            WARROOM_CHANNEL_CREATES_PER_MINUTE=self.options.creates_per_minute,
            WARROOM_DECLARATION_LEASE_SECONDS=self.options.declaration_lease,
        )

    def _start(self, fake: FakeSlack, proxy: RedisProxy) -> None:
        env = self._env(fake, proxy.url)
        for name in ("a", "b"):
            proc = self.procs[name] = WarroomProcess(env, fake, self.folder / f"warroom-{name}.log")
            proc.start()
            self._alive.add(name)
        procs = self.procs
        deadline = time.monotonic() + 15
        while sum(p.is_leader() for p in procs.values()) != 1:
            if time.monotonic() > deadline:
                raise RuntimeError("no scheduler leader among the processes")
            time.sleep(0.1)

    # -- declarations, clicks, the kill ------------------------------------------------------
    def _declare_all(self) -> threading.Thread | None:
        procs = self.procs
        n = self.options.declarations
        kill_at = (
            self.rng.randrange(n // 3, max(n // 3 + 1, 2 * n // 3)) if self.options.kill else -1
        )
        restart = None
        begun = time.monotonic()
        for i in range(n):
            _sleep_until(begun + i * self.options.spread / n)
            name = self._route(i)
            self._declare(i, name, procs[name])
            if i == kill_at:
                restart = self._kill(name, procs[name])
            self._click_rooms()
        return restart

    def _route(self, i: int) -> str:
        with self._lock:
            preferred = "ab"[i % 2]
            return preferred if preferred in self._alive else "ba"[i % 2]

    def _declare(self, i: int, name: str, proc: WarroomProcess) -> None:
        d = Declared(i, _customer(i), _declarer(i), "", name, time.time())
        self.declared.append(d)
        driver = proc.driver()
        try:
            reply = driver.command(f"{d.customer}: checkout failing for every user", user=d.user)
            d.ack_status, d.ack_text = reply.status, reply.text
        except OSError:
            d.ack_status = 0
        d.response_url = driver.last_response_url or ""

    def _kill(self, name: str, proc: WarroomProcess) -> threading.Thread:
        """SIGKILL `proc` a moment after it took a declaration (its room half built, most
        likely), and start it again a few seconds later."""
        after = self.rng.uniform(0.0, 0.15)
        time.sleep(after)
        with self._lock:
            self._alive.discard(name)
        proc.kill()
        taken = self.declared[-1].customer
        self.injected.kill = f"process {name}, {after * 1000:.0f} ms after it took {taken}"

        def restart() -> None:
            time.sleep(self.options.restart_after)
            try:
                proc.start()
            except AssertionError as e:  # the harness's way of saying it did not come up
                self.injected.kill += f"; the restart failed: {str(e)[:80]}"
                return
            with self._lock:
                self._alive.add(name)

        thread = threading.Thread(target=restart, name="restart", daemon=True)
        thread.start()
        return thread

    def _click_rooms(self) -> None:
        """The declarer marks a step done in some of the rooms they were given a link to."""
        for d in self.declared:
            if d.index in self.clicked:
                continue
            room = self._told(d).room
            if room is None:
                continue
            self.clicked.add(d.index)
            if random.Random(self.options.seed * 7919 + d.index).random() >= self.options.clicks:
                continue
            name = self._route(d.index + 1)
            # A process that dies with the request leaves the step open: nothing to check.
            with contextlib.suppress(OSError):
                self.procs[name].driver().click(room, "step_done", STEP_CLICKED, user=d.user)

    # -- faults --------------------------------------------------------------------------------
    def _inject(self, stop: threading.Event) -> None:
        rng = random.Random(self.options.seed + 1)
        kinds, weights = list(FAULTS), list(FAULTS.values())
        while not stop.wait(rng.expovariate(1 / self.options.fault_gap)):
            kind = rng.choices(kinds, weights)[0]
            if kind == "redis paused":
                seconds = rng.uniform(0.15, 0.8)
                self.proxy.pause(seconds)
                self.injected.pauses.append(seconds)
            elif kind == "redis connection cut":
                self.proxy.drop_before("*")
            elif kind == "slack 429":
                self.fake.rate_limit_next(rng.choice(METHODS), retry_after=1)
            elif kind == "slack 5xx":
                self.fake.server_error_next(rng.choice(METHODS), status=rng.choice((500, 503)))
            else:
                self.fake.lose_answer_next(rng.choice(LOST), status=rng.choice((None, 502)))

    # -- settling and looking ----------------------------------------------------------------
    def _settle(self, store: Store) -> None:
        """Faults off: wait until every declaration is answered and every due reminder posted
        (at least until the last room's first status nudge is due), or `settle` runs out."""
        update = self.protocol.update_step
        every = update.every.total_seconds() if update and update.every else 0
        now = time.monotonic()
        earliest = now + every / self.options.scale + 2
        deadline = now + self.options.settle
        while True:
            self._click_rooms()
            if time.monotonic() >= earliest:
                answered, complete, _clean, reminded, _orphans = self._check(
                    self._observe(store, datetime.now(UTC))
                )[0]
                waiting = answered.problems or complete.problems or reminded.problems
                if not waiting or time.monotonic() >= deadline:
                    return
            time.sleep(0.5)

    def _observe(self, store: Store, at: datetime, memory: Path | None = None) -> World:
        fake = self.fake
        created = [
            c.response["channel"]["id"]
            for c in fake.calls_to("conversations.create")
            if c.response.get("ok")
        ]
        channels = {}
        for cid in created:
            channel = fake.find_channel(cid)
            if channel is not None:
                channels[cid] = channel
        by_channel = {}
        for cid in channels:
            esc = store.by_channel(cid)
            if esc is not None:
                by_channel[cid] = esc.id
        return World(
            at=at,
            bot_user=fake.bot_user_id,
            channels=channels,
            told={d.index: self._told(d) for d in self.declared},
            escalations=[e for e, _ in store.history(datetime.fromtimestamp(0, UTC))],
            open_ids=set(store.open_ids()),
            by_channel=by_channel,
            memory=memory,
        )

    def _told(self, d: Declared) -> Told:
        texts = [d.ack_text]
        if d.response_url:
            texts += [str(r.get("text") or "") for r in self.fake.responses_to(d.response_url)]
        dm = self.fake.dm_with(d.user)
        if dm is not None:
            texts += [
                m.text for m in self.fake.messages_in(dm.id) if m.user == self.fake.bot_user_id
            ]
        return Told(texts)

    def _export(self) -> Path:
        folder = self.folder / "export"
        env = self._env(self.fake, self.redis_url)
        done = subprocess.run(
            warroom("memory", "export", str(folder)), env=env, capture_output=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"warroom memory export failed: {done.stderr.decode()[-500:]}")
        return folder

    def _check(self, world: World) -> tuple[list[Row], Reminders]:
        grace = timedelta(seconds=2)
        reminded, due = invariants.reminders(world, self.protocol, self.options.scale, grace)
        rows = [*invariants.declarations(world, self.declared), reminded, invariants.orphans(world)]
        if world.memory is not None:
            rows.append(invariants.memory(world))
        return rows, due

    def _totals(
        self, fake: FakeSlack, proxy: RedisProxy, world: World, due: Reminders, started: float
    ) -> list[tuple[str, str]]:
        told = [world.told[d.index] for d in self.declared]
        rooms = sum(1 for t in told if t.room)
        failed = sum(
            1
            for d, t in zip(self.declared, told, strict=True)
            if not t.room and (t.failure or d.ack_status != 200)
        )
        hit = Counter(kind for _method, kind in fake.fired)
        lost = Counter(method for method, kind in fake.fired if kind == "lost")
        pauses = self.injected.pauses
        o = self.options
        return [
            (
                "declarations",
                f"{len(self.declared)} over {o.spread:g} s, 2 processes, seed {o.seed}",
            ),
            (
                "declarers told: a room / it failed / nothing",
                f"{rooms} / {failed} / {len(told) - rooms - failed}",
            ),
            (
                "steps marked done by a declarer",
                str(
                    sum(
                        1
                        for e in world.escalations
                        for s in e.steps
                        if s.done_at and s.done_by not in (None, world.bot_user)
                    )
                ),
            ),
            ("faults: Redis paused", f"{len(pauses)} ({sum(pauses):.1f} s in all)"),
            ("faults: Redis connection cut", str(len(proxy.fired))),
            ("faults: Slack 429", str(hit["ratelimit"])),
            ("faults: Slack 5xx", str(hit["server"])),
            (
                "faults: answer lost after acting",
                f"{hit['lost']} (" + ", ".join(f"{m} {n}" for m, n in sorted(lost.items())) + ")",
            ),
            ("process SIGKILLed and restarted", self.injected.kill or "none"),
            ("reminders due / posted", f"{due.due} / {due.posted} (clock x{o.scale:g})"),
            ("wall time", f"{time.monotonic() - started:.0f} s"),
            *([("Redis keys kept under", self.prefix)] if o.keep else []),
        ]


def _customer(i: int) -> str:
    return f"Chaos {i:03d}"


def _declarer(i: int) -> str:
    return f"U0CHAOS{i:03d}"


def _sleep_until(at: float) -> None:
    left = at - time.monotonic()
    if left > 0:
        time.sleep(left)


def run(options: Options, redis_url: str, folder: Path) -> Outcome:
    """One chaos run, its processes' logs and exported memory in `folder`."""
    return ChaosRun(options, redis_url, folder).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Options()
    parser.add_argument("--declarations", type=int, default=defaults.declarations)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--spread", type=float, default=defaults.spread, help="seconds")
    parser.add_argument("--scale", type=float, default=defaults.scale, help="clock scale")
    parser.add_argument("--fault-gap", type=float, default=defaults.fault_gap, help="seconds")
    parser.add_argument("--settle", type=float, default=defaults.settle, help="seconds")
    parser.add_argument("--creates-per-minute", type=int, default=defaults.creates_per_minute)
    parser.add_argument("--no-kill", action="store_true", help="no process is SIGKILLed")
    parser.add_argument("--keep", action="store_true", help="leave the run's Redis keys")
    args = parser.parse_args()
    options = Options(
        declarations=args.declarations,
        seed=args.seed,
        spread=args.spread,
        scale=args.scale,
        fault_gap=args.fault_gap,
        settle=args.settle,
        creates_per_minute=args.creates_per_minute,
        kill=not args.no_kill,
        keep=args.keep,
    )
    folder = Path(tempfile.mkdtemp(prefix="warroom-chaos-"))
    outcome = run(options, REDIS_URL, folder)
    print(outcome.table())
    if outcome.violations:
        print(f"\n{outcome.violations} violation(s):\n{outcome.details()}")
        print(f"\nlogs and the exported memory: {folder}")
        sys.exit(1)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
