"""Timers under load: 10,000 open escalations in Redis.

Prints reminder lateness (p50/p99) for deadlines spread over a window while 10,000 other
escalations wait, the time from a process start to the first late reminder after a restart,
the failover time when the leader is SIGKILLed, and Redis memory per escalation.
Slack is the loopback fake; Redis is real (REDIS_URL, default 127.0.0.1:6379, under a
throwaway key prefix). Run: python -m bench.timers [--n 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import yaml

from bench.common import REDIS_URL, SECRET, drop_prefix, pct, settings_for
from bot.domain.declaration import Declaration
from bot.domain.escalation import open_escalation
from bot.runtime import build_runtime
from bot.store import Keys, Store
from loopback.harness import WarroomProcess, warroom_env
from loopback.slack import FakeSlack
from protocols.loader import load_protocol


def seed(store: Store, channels: list[str], *, start: datetime, tag: str) -> list[str]:
    """One open escalation per channel, declared at `start` (deadlines 15 min and 1 h after
    it, the first update nudge 2 h after it)."""
    protocol = load_protocol()
    ids = []
    pipe = store.redis.pipeline(transaction=False)
    for i, channel in enumerate(channels):
        esc, events = open_escalation(
            id=f"esc-bench-{tag}-{i:05d}",
            channel_id=channel,
            declaration=Declaration(customer=f"Customer {i}", summary="down", declarer="U0DECL"),
            ic="U0INCCMDR",
            vps=["U0VPSUPRT"],
            protocol=protocol,
            now=start,
            clock_scale=1,
            ic_source="rotation",
            bot_user_id="UBOT",
        )
        k = store.keys
        pipe.set(k.escalation(esc.id), esc.model_dump_json())
        pipe.set(k.channel(esc.channel_id), esc.id)
        pipe.zadd(k.escalations, {esc.id: esc.declared_at.timestamp()})
        pipe.sadd(k.open, esc.id)
        pipe.rpush(k.timeline(esc.id), *(e.model_dump_json() for e in events))
        ids.append(esc.id)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return ids


def memory_per_escalation(client: redis.Redis, prefix: str, n: int) -> float:
    total = 0
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        total += client.memory_usage(key) or 0
    return total / n


def lateness_and_memory(redis_url: str, n: int, measured: int, window: float) -> dict[str, float]:
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        fake.add_channel("exec-escalations")
        settings = settings_for(
            fake,
            redis_url,
            prefix,
            Path(tmp),
            scheduler_poll=0.5,
        )
        rt = build_runtime(settings)
        try:
            now = datetime.now(UTC)
            seed(rt.store, [f"C0IDLE{i:06d}" for i in range(n)], start=now, tag="idle")
            # the measured ones: their assessment falls due across the window, from 5 s on
            due: dict[str, datetime] = {}
            for i in range(measured):
                at = now + timedelta(seconds=5 + window * i / measured)
                channel = fake.add_channel(f"measured-{i:04d}")
                seed(rt.store, [channel], start=at - timedelta(minutes=15), tag=f"m{i:04d}")
                due[channel] = at
            started = time.monotonic()
            rt.timers.reconcile()  # what a new leader does with an empty job store
            reconcile_s = time.monotonic() - started
            rt.start()
            offset = time.time() - time.monotonic()
            deadline = time.monotonic() + 5 + window + 30
            while (
                len([c for c in fake.calls_to("chat.postMessage") if c.args["channel"] in due])
                < measured
            ):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            late = []
            for call in fake.calls_to("chat.postMessage"):
                channel = call.args["channel"]
                if channel in due and "overdue" in str(call.args.get("blocks")):
                    posted = datetime.fromtimestamp(call.started + offset, UTC)
                    late.append((posted - due[channel]).total_seconds())
            started = time.monotonic()
            rt.timers.reconcile()  # the leader's periodic safety net: nothing to change
            periodic_s = time.monotonic() - started
            per_esc = memory_per_escalation(client, prefix, n + measured)
            jobs = len(rt.scheduler.job_ids())
        finally:
            rt.close()
            client.close()
            drop_prefix(redis_url, prefix)
    return {
        "late_p50": pct(late, 50),
        "late_p99": pct(late, 99),
        "fired": len(late),
        "reconcile": reconcile_s,
        "periodic": periodic_s,
        "memory": per_esc,
        "jobs": jobs,
    }


def restart_and_failover(redis_url: str, n: int) -> dict[str, float]:
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        tmp_path = Path(tmp)
        config = tmp_path / "warroom.yaml"
        config.write_text(yaml.safe_dump({"vp": ["U0VPSUPRT"]}))
        store = Store(client, Keys(prefix))
        # n open escalations, all declared 20 minutes ago, and no jobs in the store (the worst
        # case: the new leader must rebuild them): every assessment reminder is late
        channels = [fake.add_channel(f"room-{i:06d}") for i in range(n)]
        seed(store, channels, start=datetime.now(UTC) - timedelta(minutes=20), tag="late")
        env = warroom_env(
            fake,
            redis_url,
            prefix,
            tmp_path,
            config,
            signing_secret=SECRET,
            WARROOM_LEASE_SECONDS=10,
            WARROOM_LOG_LEVEL="WARNING",
        )
        a = WarroomProcess(env, fake, tmp_path / "a.log")
        b = WarroomProcess(env, fake, tmp_path / "b.log")
        try:
            started = time.monotonic()
            a.start()
            while not fake.calls_to("chat.postMessage"):
                time.sleep(0.01)
            first_late = fake.calls_to("chat.postMessage")[0].started - started
            b.start()
            leader, other = (a, b) if a.is_leader() else (b, a)
            killed = time.monotonic()
            leader.kill()
            while not other.is_leader():
                time.sleep(0.05)
            failover = time.monotonic() - killed
        finally:
            a.stop()
            b.stop()
            client.close()
            drop_prefix(redis_url, prefix)
    return {"first_late": first_late, "failover": failover}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="open escalations in Redis")
    parser.add_argument("--measured", type=int, default=200, help="deadlines measured")
    parser.add_argument("--window", type=float, default=20.0, help="seconds they spread over")
    args = parser.parse_args()
    redis_url = REDIS_URL
    lm = lateness_and_memory(redis_url, args.n, args.measured, args.window)
    rf = restart_and_failover(redis_url, args.n)
    rows = [
        ("reminder lateness p50", f"{lm['late_p50'] * 1000:.0f} ms", ""),
        ("reminder lateness p99", f"{lm['late_p99'] * 1000:.0f} ms", "< 1 s"),
        ("reminders measured", f"{lm['fired']} of {args.measured}", ""),
        (f"reconcile {args.n + args.measured} (empty store)", f"{lm['reconcile']:.2f} s", ""),
        ("periodic reconcile (every 5 min)", f"{lm['periodic']:.2f} s", ""),
        ("start to first late reminder", f"{rf['first_late']:.2f} s", "< 5 s"),
        ("failover after SIGKILL (lease 10 s)", f"{rf['failover']:.1f} s", "< 30 s"),
        ("Redis memory per escalation", f"{lm['memory'] / 1024:.1f} KB", "< 10 KB"),
        ("scheduler jobs in Redis", f"{lm['jobs']}", ""),
    ]
    print(f"{args.n} open escalations in Redis")
    print(f"| {'measure':<36} | {'value':>14} | {'target':>7} |")
    print(f"|{'-' * 38}|{'-' * 16}|{'-' * 9}|")
    for name, value, target in rows:
        print(f"| {name:<36} | {value:>14} | {target:>7} |")


if __name__ == "__main__":
    main()
