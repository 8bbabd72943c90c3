"""Redis behind Sentinel, with real processes: a primary, a replica and three sentinels on
loopback (tests/e2e/sentinel_cluster.py), and two `warroom run` on a scaled clock given
`REDIS_URL=redis+sentinel://...`. The primary is killed mid-run: the bot follows the new
primary by itself, and every reminder is still posted exactly once, also when the replica
had fallen behind and the failover lost what the primary alone held. Also: the store's
claims against a lagging, a missing and a write-refusing replica, `warroom run`'s one line
for sentinels it cannot use, and the bot over TLS (`rediss+sentinel://`)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from bot.boot import redis_from_url
from bot.domain.errors import Unavailable
from bot.store import Keys, Store
from loopback.harness import WarroomProcess, warroom, warroom_env
from loopback.server import free_port
from loopback.slack import FakeSlack
from tests.conftest import SCALED_CLOCK_PROCESSES, SIGNING_SECRET
from tests.e2e.sentinel_cluster import SERVICE, SentinelCluster, SentinelUnavailable

pytestmark = [pytest.mark.slow, SCALED_CLOCK_PROCESSES]

PREFIX = "warroom-sentinel"
UNAVAILABLE = "cannot be reached"


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelCluster]:
    try:
        cluster = SentinelCluster.start(tmp_path / "redis")
    except SentinelUnavailable as e:
        pytest.skip(f"no Sentinel here: {e}")
    yield cluster
    cluster.stop()


@pytest.fixture
def tls_sentinels(tmp_path: Path) -> Iterator[SentinelCluster]:
    try:
        cluster = SentinelCluster.start(tmp_path / "redis", tls=True)
    except SentinelUnavailable as e:
        pytest.skip(f"no Sentinel over TLS here: {e}")
    yield cluster
    cluster.stop()


@pytest.fixture
def bots(sentinels, fake_slack, tmp_path, config_file) -> Iterator[Callable]:
    started: list[WarroomProcess] = []

    def start(scale: float) -> list[WarroomProcess]:
        env = warroom_env(
            fake_slack,
            sentinels.url(),
            PREFIX,
            tmp_path,
            config_file,
            signing_secret=SIGNING_SECRET,
            WARROOM_CLOCK_SCALE=scale,
            WARROOM_LEASE_SECONDS=2,
            WARROOM_SCHEDULER_POLL=0.2,
        )
        procs = [WarroomProcess(env, fake_slack, tmp_path / f"warroom-{i}.log") for i in (0, 1)]
        started.extend(procs)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda p: p.start(), procs))
        wait_until(lambda: leaders(procs) == 1, 10, "one leader")
        return procs

    yield start
    for p in started:
        p.stop()


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def leaders(procs: list[WarroomProcess]) -> int:
    return sum(p.is_leader() for p in procs)


class Leadership:
    """Which processes lead the scheduler, sampled every 50 ms in a thread of its own while
    in use: the most that led at once, and the longest stretch none did."""

    def __init__(self, procs: list[WarroomProcess]) -> None:
        self.procs = procs
        self.most = 0
        self.leaderless = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Leadership:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        since = None
        while not self._stop.wait(0.05):
            now, leading = time.monotonic(), leaders(self.procs)
            self.most = max(self.most, leading)
            since = (since or now) if leading == 0 else None
            if since is not None:
                self.leaderless = max(self.leaderless, now - since)


def healthy(proc: WarroomProcess) -> bool:
    try:
        return proc.health()["status"] == "ok"
    except (OSError, ValueError):
        return False


def customer(n: int) -> str:
    return f"Client {n:02d}"


def rooms(fake: FakeSlack) -> dict[int, object]:
    """The war rooms the processes opened and kept (not archived), by customer number."""
    name = re.compile(r"esc-[0-9]{8}-client-([0-9]{2})")
    return {
        int(m.group(1)): c
        for c in fake.channels.values()
        if (m := name.fullmatch(c.name)) and not c.is_archived
    }


def shown(message) -> str:
    texts = [b.get("text", {}).get("text", "") for b in message.blocks or [] if "text" in b]
    return "\n".join(texts) or message.text or ""


def posts(fake: FakeSlack, channel_id: str, mark: str) -> list[str]:
    """The messages that start with `mark` (the brief shows the same marks inside)."""
    return [shown(m) for m in fake.messages_in(channel_id) if shown(m).startswith(mark)]


def assert_reminded_once(fake: FakeSlack, channel, since: datetime) -> None:
    """Each step that fell due reminded exactly once; one nudge per 8 s since `since`."""
    overdue = posts(fake, channel.id, "⏰")
    assert len(overdue) == 2, (channel.name, overdue)
    assert sum("Immediate assessment" in t for t in overdue) == 1, channel.name
    assert sum("First word to the customer" in t for t in overdue) == 1, channel.name
    age = time.time() - since.timestamp()
    nudges = len(posts(fake, channel.id, "🔔"))
    # One may be falling due in the last second, on its way.
    assert int((age - 1) // 8) <= nudges <= int(age // 8), (channel.name, age, nudges)


def declared_at(sentinels: SentinelCluster, esc_id: str) -> datetime | None:
    """When the record (on the current primary) says the escalation was declared; None if
    the primary has no record of it."""
    primary = sentinels.primary()
    assert primary is not None
    with sentinels.client(primary) as client:
        raw = client.get(Keys(PREFIX).escalation(esc_id))
    return datetime.fromisoformat(json.loads(raw)["declared_at"]) if raw else None


def test_the_bot_follows_a_failover_and_posts_every_reminder_once(
    sentinels, bots, fake_slack
) -> None:
    # 15 min -> 1 s (assessment), 1 h -> 4 s (first customer contact), an update every
    # 2 h -> a nudge every 8 s
    procs = bots(900)
    replies: dict[int, str] = {}

    def declare(n: int) -> None:
        replies[n] = procs[n % 2].driver().command(f"{customer(n)}: checkout down").text

    # Rooms are opened every 0.4 s; their reminders fall due from 1 s on, and the primary
    # dies while they do.
    for n in range(6):
        declare(n)
        time.sleep(0.4)
    old = sentinels.primary()
    assert old is not None
    with Leadership(procs) as leadership:
        killed = time.monotonic()
        old.kill()
        n = 6
        while not all(healthy(p) for p in procs):
            assert time.monotonic() - killed < 30, "the bot did not follow the new primary"
            declare(n)
            n += 1
            time.sleep(0.4)
        recovered = time.monotonic() - killed
        assert sentinels.primary() not in (None, old)
        after = range(n, n + 3)
        for n in after:
            declare(n)
        wait_until(lambda: leaders(procs) == 1, 10, "one leader on the new primary")
    refused = sum(UNAVAILABLE in t for t in replies.values())
    print(
        f"both processes healthy {recovered:.1f} s after the primary was killed; "
        f"{refused} of {len(replies) - 9} declarations meanwhile told Redis was unreachable; "
        f"no scheduler leader for {leadership.leaderless:.1f} s, at most {leadership.most} at once"
    )
    assert leadership.most == 1

    # Told the truth: each declaration either opened a room or said Redis was unreachable.
    for n, text in replies.items():
        assert "Opening a war room" in text or UNAVAILABLE in text, (n, text)
    for n in after:
        assert "Opening a war room" in replies[n]
        wait_until(lambda n=n: n in rooms(fake_slack), 10, f"the room of {customer(n)}")

    # Every reminder due by now posted, and exactly once: the first customer contact falls
    # due 4 s after a declaration.
    time.sleep(5.5)
    kept = rooms(fake_slack)
    assert {*range(6), *after} <= kept.keys()
    for channel in kept.values():
        since = declared_at(sentinels, channel.name)
        assert since is not None, f"{channel.name} is open in Slack but its record was lost"
        assert channel.pins, channel.name
        assert_reminded_once(fake_slack, channel, since)


def test_what_only_the_old_primary_held_is_never_posted_twice(sentinels, bots, fake_slack) -> None:
    """The replica falls behind (paused, its link full), the reminders fall due, then the
    primary dies and the replica, lacking everything since, becomes primary. A claim only
    the old primary acknowledged would be lost with it, and the reminder posted again; so
    while a replica is attached, a firing posts only once a replica holds its claim."""
    # 15 min -> 2 s (assessment), 1 h -> 8 s (first customer contact)
    procs = bots(450)
    for n in range(3):
        assert "Opening a war room" in procs[n % 2].driver().command(f"{customer(n)}: down").text
    wait_until(lambda: len([r for r in rooms(fake_slack).values() if r.pins]) == 3, 10, "rooms")
    sentinels.wait_in_sync()

    sentinels.stall_replica()
    time.sleep(2.5)  # every assessment reminder falls due, and is tried, while it lags
    held_back = {n: posts(fake_slack, r.id, "⏰") for n, r in rooms(fake_slack).items()}
    old = sentinels.primary()
    assert old is not None
    with Leadership(procs) as leadership:
        old.kill()
        sentinels.replica().resume()
        sentinels.wait_for_primary(other_than=old, timeout=20)
        wait_until(lambda: all(healthy(p) for p in procs), 20, "the bot on the new primary")
        wait_until(lambda: leaders(procs) == 1, 10, "one leader on the new primary")
        time.sleep(3)  # the new leader reconciles and fires what is due
    assert leadership.most == 1
    late = []
    for channel in rooms(fake_slack).values():
        since = declared_at(sentinels, channel.name)
        assert since is not None
        first = next(
            m for m in fake_slack.messages_in(channel.id) if shown(m).startswith("⏰ *Immediate")
        )
        late.append(float(first.ts) - since.timestamp() - 2)  # due 2 s after the declaration
    per_room = {
        c.name: sum("Immediate assessment" in t for t in posts(fake_slack, c.id, "⏰"))
        for c in rooms(fake_slack).values()
    }
    print(
        f"assessment reminders posted while the replica lagged: "
        f"{sum(map(len, held_back.values()))}; in the end, per room: {per_room}, "
        f"the first of each {min(late):.1f} to {max(late):.1f} s late"
    )
    for channel in rooms(fake_slack).values():
        overdue = posts(fake_slack, channel.id, "⏰")
        assert sum("Immediate assessment" in t for t in overdue) == 1, (channel.name, overdue)
        # the next deadline (8 s) may have come meanwhile: once, if it did
        assert sum("First word to the customer" in t for t in overdue) <= 1, channel.name


def test_a_claim_stands_once_a_replica_holds_it(sentinels) -> None:
    """The store on the replicated Redis: a firing's claim counts once the replica has it;
    one the lagging replica does not acknowledge is withdrawn, to be tried again; a primary
    left without a replica claims at once; and a primary told to refuse writes without a
    replica in sync (`min-replicas-to-write`) makes people see a message, not an error."""
    client = redis_from_url(sentinels.url())
    store = Store(client, Keys(PREFIX), replica_wait_ms=300)
    primary, replica = sentinels.primary(), sentinels.replica()
    assert primary is not None
    try:
        assert store.begin_once("in-sync", ttl=60) == "mine"

        replica.pause()
        started = time.monotonic()
        assert store.begin_once("lagging", ttl=60) == Store.UNREPLICATED_RETRY
        assert time.monotonic() - started >= 0.3  # it waited for the replica, in vain
        assert not client.exists(Keys(PREFIX).once("lagging"))  # withdrawn

        with sentinels.client(primary) as admin:
            admin.config_set("min-replicas-to-write", 1)
            admin.config_set("min-replicas-max-lag", 1)
            # Until the primary counts the paused replica out (its last acknowledgement older
            # than the lag, checked on the primary's own once-a-second beat), writes still pass.
            wait_until(
                lambda: admin.info("replication").get("min_slaves_good_slaves") == 0,
                10,
                "the primary to count the paused replica out of sync",
            )
            with pytest.raises(Unavailable, match="refusing writes"):
                store.accept_declaration(
                    "fp", "token", {}, claim_ttl=60, now_ms=0, window_ms=60_000, limit=20
                )
            admin.config_set("min-replicas-to-write", 0)

        replica.kill()  # the primary alone: nothing a failover could promote holds less
        wait_until(lambda: not client.execute_command("ROLE")[2], 5, "the replica gone")
        # Were it to wait for a replica, it would wait an hour: it claims at once.
        patient = Store(client, Keys(PREFIX), replica_wait_ms=3_600_000)
        assert patient.begin_once("alone", ttl=60) == "mine"
    finally:
        client.close()


def test_an_acl_user_denied_role_still_claims(sentinels, caplog) -> None:
    """ROLE is in ACL's @dangerous category: an ACL user without it claims as with one
    Redis, and the log says so once."""
    primary = sentinels.primary()
    assert primary is not None
    with sentinels.client(primary) as admin:
        admin.acl_setuser(
            "limited",
            enabled=True,
            passwords=["+pw"],
            keys=["*"],
            commands=["+@all", "-@dangerous"],
        )
    limited = (
        sentinels.url()
        .replace(f":{sentinels.password}@", ":pw@")
        .replace("redis+sentinel://", "redis+sentinel://limited")
    )
    client = redis_from_url(limited)
    store = Store(client, Keys(PREFIX), replica_wait_ms=300)
    try:
        assert store.begin_once("one", ttl=60) == "mine"
        assert store.begin_once("two", ttl=60) == "mine"
        assert store.replica_wait_ms == 0
        assert sum("refused ROLE" in r.getMessage() for r in caplog.records) == 1
    finally:
        client.close()


def test_run_says_in_one_line_why_the_sentinels_will_not_do(
    sentinels, fake_slack, tmp_path, config_file
) -> None:
    """`warroom run` refuses at once (exit 2, one line, no password shown) a Sentinel URL it
    cannot use: malformed, sentinels that do not answer or refuse their password, a service
    they do not know, a primary that refuses the password."""
    url = sentinels.url()
    cases = {
        "redis+sentinel://127.0.0.1:26379": "is not usable: it names no service",
        f"redis+sentinel://127.0.0.1:{free_port()}/{SERVICE}/0": "no sentinel answered",
        url.replace(f"/{SERVICE}/", "/elsewhere/"): "no primary that answers for 'elsewhere'",
        sentinels.url(sentinel_password="wrong"): "the sentinels refused sentinel_password",
        sentinels.url(password="wrong"): "refused the password in REDIS_URL",
    }

    def run(bad: str) -> subprocess.CompletedProcess:
        env = warroom_env(
            fake_slack, bad, PREFIX, tmp_path, config_file, signing_secret=SIGNING_SECRET
        )
        command = warroom("run", "--port", str(free_port()))
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    with ThreadPoolExecutor(len(cases)) as pool:
        results = dict(zip(cases, pool.map(run, cases), strict=True))
    for bad, result in results.items():
        assert result.returncode == 2, (bad, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("warroom: ") and cases[bad] in line, line
        assert sentinels.password not in line and sentinels.sentinel_password not in line


def test_the_bot_speaks_tls_to_the_sentinels_and_the_servers(
    tls_sentinels, fake_slack, tmp_path, config_file
) -> None:
    """`rediss+sentinel://...?ssl_ca_certs=CA`: every sentinel and server speaks only TLS,
    with a certificate of a private CA; the bot runs on it, and without TLS it is refused."""
    url = tls_sentinels.url()
    env = warroom_env(fake_slack, url, PREFIX, tmp_path, config_file, signing_secret=SIGNING_SECRET)
    proc = WarroomProcess(env, fake_slack, tmp_path / "warroom.log").start()
    try:
        assert proc.health()["redis"] is True
        assert "Opening a war room" in proc.driver().command(f"{customer(1)}: down").text
        wait_until(lambda: 1 in rooms(fake_slack) and rooms(fake_slack)[1].pins, 15, "the room")
    finally:
        proc.stop()
    plain = url.replace("rediss+sentinel", "redis+sentinel").partition("&ssl_ca_certs")[0]
    result = subprocess.run(
        warroom("run", "--port", str(free_port())),
        env={**env, "REDIS_URL": plain},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no sentinel answered" in result.stderr.strip()
