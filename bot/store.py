"""Redis persistence of escalations, timelines and claims; every key name is built here."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
from redis.client import Pipeline

from bot.domain.drafts import Draft
from bot.domain.errors import Unavailable, WarroomError
from bot.domain.escalation import Escalation, Status
from bot.domain.timeline import Event

log = logging.getLogger(__name__)

T = TypeVar("T")
# A write queued in a transaction.
Write = Callable[[Pipeline], object]
# Drafts are kept a month: long enough for anyone to act on one.
DRAFT_TTL = 30 * 24 * 3600

# What Redis raises when it cannot be reached or stops answering mid-command.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)

UNAVAILABLE = (
    "The escalation store (Redis) cannot be reached right now, so nothing was created or "
    "changed. Try again in a minute; if it persists, tell whoever runs warroom."
)
REFUSING_WRITES = (
    "The escalation store (Redis) is refusing writes right now (it is full, read-only or "
    "without a replica in sync), so nothing was created or changed. Tell whoever runs warroom."
)


# An exact sliding window: of the calls reserved so far (the last `limit` kept, in order), the
# new one goes when the oldest of them has left the window.
_SLOT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local slot = now
if redis.call('llen', KEYS[1]) >= limit then
  local oldest = tonumber(redis.call('lindex', KEYS[1], -limit))
  if oldest + window > slot then slot = oldest + window end
end
redis.call('rpush', KEYS[1], slot)
redis.call('ltrim', KEYS[1], -limit, -1)
redis.call('pexpire', KEYS[1], slot - now + window + 1000)
"""

# One App Home publish's turn, in one round trip: its slot under Slack's limit; the refresh
# lease renewed if the caller (ARGV[4]) holds it, and whether it does; and the generation
# of the escalations, so a refresh sees a change the moment it happens.
_PUBLISH_TURN = (
    _SLOT
    + """
local held = 0
if ARGV[4] ~= '' and redis.call('get', KEYS[3]) == ARGV[4] then
  redis.call('pexpire', KEYS[3], ARGV[5])
  held = 1
end
return {slot, tonumber(redis.call('get', KEYS[2]) or '0'), held}
"""
)

# A declaration accepted, in one step: the claim that makes it the only one (SET NX), its turn
# to create a channel under Slack's limit, and the whole declaration in the queue, due at that
# turn. All or nothing: no claim without its queued declaration, no declaration without its
# turn. Returns {1, slot} or {0, the claim's value}. Repeated (a retry after the answer was
# lost) it answers as the first time did.
_ACCEPT = (
    """
if not redis.call('set', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[5]) then
  local claim = redis.call('get', KEYS[2])
  local turn = redis.call('zscore', KEYS[4], ARGV[6])
  if claim == ARGV[4] and turn then return {1, tonumber(turn)} end
  return {0, claim}
end
"""
    + _SLOT
    + """
redis.call('set', KEYS[3], ARGV[7])
redis.call('zadd', KEYS[4], slot, ARGV[6])
redis.call('expire', KEYS[2], tonumber(ARGV[5]) + math.ceil((slot - now) / 1000))
return {1, slot}
"""
)

# Take a queued declaration whose time has come (ARGV[3], or the first due by ARGV[5]),
# leased to the caller until ARGV[2] (ms) under its fencing token ARGV[6]: {token,
# declaration}, or nil. The declaration's and the lease's keys are only known inside (ARGV[4]
# and ARGV[7] are their prefixes): fine on one Redis and behind Sentinel, not on a Redis
# Cluster (which warroom does not support).
_TAKE_DECLARATION = """
local token = ARGV[3]
if token == '' then
  local due = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[5], 'LIMIT', 0, 1)
  if #due == 0 then return nil end
  token = due[1]
else
  local score = redis.call('zscore', KEYS[1], token)
  if not score then return nil end
  -- Not due yet: unless it is the caller's already (its first send's answer was lost).
  if tonumber(score) > tonumber(ARGV[1])
      and (ARGV[6] == '' or redis.call('get', ARGV[7] .. token) ~= ARGV[6]) then
    return nil
  end
end
local job = redis.call('get', ARGV[4] .. token)
if not job then
  redis.call('zrem', KEYS[1], token)
  return nil
end
redis.call('zadd', KEYS[1], ARGV[2], token)
if ARGV[6] ~= '' then
  redis.call('set', ARGV[7] .. token, ARGV[6], 'PX', tonumber(ARGV[2]) - tonumber(ARGV[1]))
end
return {token, job}
"""

# The heartbeat of a build: its lease (KEYS[1]) and its place in the queue (KEYS[2]) renewed
# until ARGV[3] (ms), if the caller (ARGV[1]) still holds it; 1 if so, 0 if it was taken over.
_RENEW_DECLARATION = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('pexpire', KEYS[1], ARGV[2])
redis.call('zadd', KEYS[2], 'XX', ARGV[3], ARGV[4])
return 1
"""

# How far a build got (ARGV[2] into KEYS[2], next due ARGV[3] in the queue KEYS[3]), written
# only if its holder (ARGV[1], '' for anyone) still holds the lease KEYS[1]: 1, or 0. With
# ARGV[5] = '1' the lease is let go in the same step (the build stops here): a heartbeat
# still in flight can no longer move the next try back to the end of the lease.
_SAVE_DECLARATION = """
if ARGV[1] ~= '' and redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2], 'XX')
redis.call('zadd', KEYS[3], 'XX', ARGV[3], ARGV[4])
if ARGV[5] == '1' then redis.call('del', KEYS[1]) end
return 1
"""

# A declaration leaves the queue (its room open, or rolled back), and its claim says so
# (ARGV[2], kept ARGV[3] s; '' to release it): only by the holder of its lease (ARGV[1], ''
# for anyone). 1, or 0 when another build holds it now.
_FINISH_DECLARATION = """
if ARGV[1] ~= '' and redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('zrem', KEYS[2], ARGV[4])
redis.call('del', KEYS[3], KEYS[1], KEYS[5])
if ARGV[2] ~= '' then
  redis.call('set', KEYS[4], ARGV[2], 'EX', ARGV[3])
elseif ARGV[5] == '1' then
  redis.call('del', KEYS[4])
end
return 1
"""

# A channel name is the declaration's once it reserved it (1), or if it already had (2). The
# names a declaration reserved are kept with it (KEYS[2]): a rollback looks under every one.
_RESERVE_NAME = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('sadd', KEYS[2], ARGV[3])
  redis.call('expire', KEYS[2], ARGV[2])
  return 1
end
if redis.call('get', KEYS[1]) == ARGV[1] then return 2 end
return 0
"""

# Append to a list once per idempotency key (ARGV[1]), in one step: the first call under the
# key appends ARGV[4..] to KEYS[1] and notes its own id (ARGV[2]) in the hash KEYS[2]. The
# same call sent again (its answer was lost) finds its own id: 1, as the first time. Another
# call under the same key (two people pinning one message at once): 0, nothing appended.
# KEYS[3], when given, is a set ARGV[3] joins in the same step (the escalations with memory).
_APPEND_ONCE = """
local mine = redis.call('hget', KEYS[2], ARGV[1])
if mine then
  if mine == ARGV[2] then return 1 end
  return 0
end
redis.call('hset', KEYS[2], ARGV[1], ARGV[2])
redis.call('rpush', KEYS[1], unpack(ARGV, 4))
if KEYS[3] then redis.call('sadd', KEYS[3], ARGV[3]) end
return 1
"""

# The first delivery of an event: SET NX with the caller's id, so that the caller's own resend
# (its first answer lost) is still the first, and anyone else's is not.
_FIRST = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

# A list filled only while it is empty: sent again after its answer was lost (the client's
# retry), an import adds nothing the first send did.
_PUSH_IF_EMPTY = """
if redis.call('exists', KEYS[1]) == 0 then redis.call('rpush', KEYS[1], unpack(ARGV)) end
"""

# A counter advanced once per call (ARGV[1], the call's own id), the count it took noted under
# KEYS[2] for ARGV[2] s: the same call sent again after its answer was lost reads its count
# back and counts nothing more. ARGV[3] > 0: the counter lives that many seconds from its first
# count (a window of turns).
_COUNT_ONCE = """
local taken = redis.call('get', KEYS[2])
if taken then return tonumber(taken) end
local n = redis.call('incr', KEYS[1])
if tonumber(ARGV[3]) > 0 and redis.call('ttl', KEYS[1]) < 0 then
  redis.call('expire', KEYS[1], ARGV[3])
end
redis.call('set', KEYS[2], n, 'EX', ARGV[2])
return n
"""

# How long a count is kept under the id of the call that took it: far longer than a resend.
COUNTED_KEEP = 24 * 3600

# How long a firing's claim is remembered: far longer than any retry of it.
ONCE_KEEP = 7 * 24 * 3600

# A month of model usage is kept a year and a month after its last call: last year's same
# month can still be compared. A month keeps at most this many calls (the latest): a runaway
# loop of calls cannot fill Redis (each entry is about 250 bytes).
USAGE_KEEP = 400 * 24 * 3600
USAGE_MAX_CALLS = 100_000

# Let go of a lease only if it is still ours (it may have lapsed and been taken).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


# The next number of an escalation's outputs and the output filed under it, in one step: two
# approvals on two hosts at once get two numbers, and no number is taken without its output.
# The call's id (ARGV[4]) is noted in the hash KEYS[4]: sent again after its answer was lost,
# it answers the number it took rather than filing the output twice.
_ADD_OUTPUT = """
local filed = redis.call('hget', KEYS[4], ARGV[4])
if filed then return tonumber(filed) end
local n = redis.call('incr', KEYS[1])
redis.call('hset', KEYS[2], n .. '-' .. ARGV[1], ARGV[2])
redis.call('sadd', KEYS[3], ARGV[3])
redis.call('hset', KEYS[4], ARGV[4], n)
return n
"""


# Claim one firing, with Redis's clock (every process agrees on it). The key holds "done", or
# "posting:<deadline>:<attempt>:<answer>" while an attempt is under way, or "unsure" when an
# attempt may have posted without knowing it. A claim taken over from an attempt that lapsed
# or was unsure is "check": the caller must look for the post before posting. The attempt's
# id (ARGV[3]) is kept with its claim: the same attempt sent again after its answer was lost
# gets the answer it was given.
_BEGIN_ONCE = """
local v = redis.call('get', KEYS[1])
if v == 'done' then return 'done' end
local t = tonumber(redis.call('time')[1])
if v then
  local deadline, attempt, answer = string.match(v, '^posting:(%d+):?([^:]*):?(%a*)$')
  if attempt and attempt ~= '' and attempt == ARGV[3] and answer ~= '' then return answer end
  deadline = tonumber(deadline or '0')
  if deadline > t then return tostring(deadline - t) end
end
local answer = 'mine'
if v then answer = 'check' end
redis.call('set', KEYS[1], 'posting:' .. (t + tonumber(ARGV[1])) .. ':' .. ARGV[3] .. ':' .. answer,
  'EX', ARGV[2])
return answer
"""


def _claim(answer: object) -> str | float:
    """_BEGIN_ONCE's answer: "mine", "check", "done", or seconds to wait."""
    claim = answer.decode() if isinstance(answer, bytes) else str(answer)
    return claim if claim in ("mine", "check", "done") else float(claim)


class _Key:
    """A key of the deployment: `keys.open` is "<prefix>:open"."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, keys: Keys, owner: type | None = None) -> str:
        return f"{keys.prefix}:{self.name}"


class _KeyOf:
    """A key per thing: `keys.escalation("esc-1")` is "<prefix>:esc:esc-1"."""

    def __init__(self, template: str) -> None:
        self.template = template

    def __get__(self, keys: Keys, owner: type | None = None) -> Callable[[str], str]:
        return lambda part: f"{keys.prefix}:{self.template.format(part)}"


class Keys:
    """Every Redis key warroom uses, under one prefix so several deployments (or test runs)
    can share a server and be cleaned up with one SCAN. Why each key exists is said beside it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def pattern(self) -> str:
        return f"{self.prefix}:*"

    # JSON document with a `version`; updated under WATCH so concurrent writers can't both win.
    escalation = _KeyOf("esc:{}")
    # A list, appended with RPUSH only: the timeline is never rewritten.
    timeline = _KeyOf("esc:{}:timeline")
    # Hash of what was appended to the timeline outside a versioned write: idempotency key
    # (a pinned message's ts, or the call's own id) -> the id of the call that appended it,
    # so a resent append (its answer lost) and a second pin of one message add nothing.
    appended = _KeyOf("esc:{}:appended")
    # One per versioned write, SET in the write's own transaction: after a lost answer, the
    # writer reads it back to know whether its write landed (see `Store._transact`).
    write = _KeyOf("write:{}")
    # channel id -> escalation id, so a click or mention in a channel finds its escalation.
    channel = _KeyOf("channel:{}")
    # Sorted set of every escalation id, scored by declaration time (reports, reconciling).
    escalations = _Key("escalations")
    # Set of the ids not yet resolved.
    open = _Key("open")
    # Counter advanced once per declaration that takes its IC from the rotation.
    ic_rotation = _Key("ic-rotation")
    # The count one call took from a counter (the IC rotation, a person's turns with the model,
    # App Home's generation), under the call's id: a call sent again after its answer was lost
    # reads its count back rather than counting twice.
    counted = _KeyOf("counted:{}")
    # SET NX: the first of several identical declarations wins; the rest are told so.
    claim = _KeyOf("claim:{}")
    # Sorted set of the declarations waiting for their room, by when one may next be taken:
    # its turn to create a channel, or when the lease of the process building it runs out.
    declaration_queue = _Key("declarations")
    # A queued declaration (JSON): what was declared, whom to tell, how far its room got.
    declaration = _KeyOf("declaration:{}")
    # The fencing token of the build that holds a declaration (SET PX, renewed on a heartbeat
    # while it builds): every write the build makes checks it, so a build that outlived its
    # lease cannot write over the one that took over.
    declaration_lease = _KeyOf("declaration-lease:{}")
    # SET NX with a declaration's token: the one declaration that may create (and, when the
    # answer was lost, look for) a channel of this name.
    channel_name = _KeyOf("channel-name:{}")
    # Set of the channel names a declaration reserved, in case one was made under a lost answer.
    declaration_names = _KeyOf("declaration-names:{}")
    # SET NX EX on Slack's event id: retried deliveries are processed once.
    seen_event = _KeyOf("event:{}")
    # Set of resolved escalations whose follow-ups have not all been posted.
    following_up = _Key("following-up")
    # INCR with an expiry: how often someone asked for something within a window.
    turns = _KeyOf("turns:{}")
    # Idempotency key of one timer firing: "posting" while in progress, "done" after.
    once = _KeyOf("once:{}")
    # The reply mailbox (by its URL's host, user and mailbox): the UID validity and the
    # highest UID read through, so each poll reads only what came in since.
    mailbox_mark = _KeyOf("mailbox-mark:{}")
    # APScheduler's RedisJobStore: job id -> pickled job.
    scheduler_jobs = _Key("scheduler:jobs")
    # APScheduler's RedisJobStore: sorted set of job ids by next run time.
    scheduler_run_times = _Key("scheduler:run-times")
    # Which process runs the scheduler: SET NX PX, renewed while it lives.
    scheduler_lease = _Key("scheduler:leader")
    # A draft the VP agent posted (JSON), kept for Approve / Edit / Regenerate.
    draft = _KeyOf("draft:{}")
    # Set of the drafts being written, each with its lease (SET EX, longer than any model
    # call): a draft whose lease ran out while it was still being written lost its process.
    drafts_writing = _Key("drafts-writing")
    draft_writing = _KeyOf("draft-writing:{}")
    # List of the latest channel-creation times reserved (ms), for the sliding window.
    creation_rate = _Key("create-rate")
    # Sorted set of users by when they last opened the App Home tab.
    home_viewers = _Key("home-viewers")
    # INCR on every change an App Home tab shows: a refresh knows which state it drew, and
    # that it must go round again when the number moved meanwhile.
    home_generation = _Key("home-generation")
    # SET NX PX with a token: the one process refreshing the tabs, renewed at each publish.
    home_refresher = _Key("home-refresher")
    # List of the latest views.publish times reserved (ms), for Slack's limit (sliding window).
    home_publish_rate = _Key("home-publish-rate")

    # Agent_Memory (bot/memory.py): Redis is where the documents live, so every process on
    # every host reads and appends the same ones and a deploy on an ephemeral disk loses
    # nothing; the file tree is a mirror and an export. Each document is JSON.
    # Set of the escalations that have memory (what an export walks).
    memory_escalations = _Key("memory:escalations")
    # <id>/instruction.yaml: the declaration.
    memory_instruction = _KeyOf("memory:{}:instruction")
    # <id>/decisions/vp_decisions.yaml: a list, RPUSH only, so concurrent writers on
    # different hosts each add their entry and none is lost.
    memory_decisions = _KeyOf("memory:{}:decisions")
    # <id>/reviews/executive_review.yaml.
    memory_review = _KeyOf("memory:{}:review")
    # <id>/outputs/final/<n>-<kind>.yaml: a hash from "<n>-<kind>" to the output.
    memory_outputs = _KeyOf("memory:{}:outputs")
    # INCR: the <n> of the next output, unique across processes.
    memory_output_number = _KeyOf("memory:{}:output-number")
    # Hash of the appends and outputs filed for one escalation: the call's id -> what it
    # did, so a call sent again after its answer was lost files nothing twice.
    memory_appended = _KeyOf("memory:{}:appended")
    # _knowledge/semantic/support_strategy.yaml's lessons_learned: a list, RPUSH only.
    memory_lessons = _Key("memory:knowledge:lessons")
    # The same for the lessons: the appending call's id -> its id.
    memory_lessons_appended = _Key("memory:knowledge:lessons-appended")
    # _knowledge/semantic/customer_insights.yaml as people keep it (`warroom memory import`).
    memory_customer_insights = _Key("memory:knowledge:customer-insights")

    # The token usage of every model call in a calendar month (UTC, "2026-12"): a list of JSON
    # entries (when, escalation, kind, model, token counts), RPUSH only, one per call, for
    # `warroom report`'s model spend. Each month is kept about 13 months after its last call,
    # and capped at USAGE_MAX_CALLS entries.
    model_usage = _KeyOf("model-usage:{}")


@dataclass(frozen=True)
class Approved:
    """What `Store.approve_draft` did: the draft as it now is; and, when this approval made
    it approved, the escalation before and after, the events, and the output filed (its
    number, kind and document)."""

    draft: Draft
    before: Escalation | None = None
    escalation: Escalation | None = None
    events: list[Event] = field(default_factory=list)
    output_number: int | None = None
    output: tuple[str, dict[str, Any]] | None = None


# What an approval that completes a draft records: (the draft as approved, the number of its
# output) -> the draft with its output file, the escalation's new state, its timeline events,
# the Agent_Memory output (kind, document) and the decision logged.
Recording = Callable[
    [Draft, Escalation, int],
    tuple[Draft, Escalation, list[Event], tuple[str, dict[str, Any]], dict[str, Any]],
]


@dataclass(frozen=True)
class Fence:
    """A lease a write is made under: its key, and the token of the holder making it."""

    key: str
    token: str


class Fenced(WarroomError):
    """The caller no longer holds the declaration it builds: another process took it over,
    and nothing this one wrote under it landed."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"The build lost its lease; {what} was left to the process now holding it."
        )


class ConflictError(WarroomError):
    """Another writer changed the same thing first, twice in a row."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Someone else changed {what} at the same moment; please try again.")


@dataclass(frozen=True)
class Claim:
    """An identical declaration came first: its room is open (`channel_id`), or being made."""

    escalation_id: str | None = None
    channel_id: str | None = None


def _claim_of(value: bytes | None) -> Claim:
    """The claim that came first, as its value reads: open (with the room), or pending."""
    state, _, rest = (value or b"").decode().partition("|")
    if state == "open":
        esc_id, _, channel_id = rest.partition("|")
        return Claim(escalation_id=esc_id, channel_id=channel_id)
    # Pending under any token, ours included: a redelivery of the same request must not
    # start a second room while the first is being made.
    return Claim()


def fingerprint(*parts: str) -> str:
    """A short stable hash of what makes two declarations "the same"."""
    text = "\x1f".join(p.strip().casefold() for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Store:
    """Escalations in Redis. Raises `Unavailable` (with a message for people) when Redis is down.

    `replica_wait_ms` (a replicated Redis, behind Sentinel): a firing's claim counts only
    once a replica has acknowledged it, waiting at most this long (see `begin_once`)."""

    # How often a versioned write decides again after another writer came first.
    WRITE_ATTEMPTS = 10
    # How long a versioned write's id is kept: far longer than reading it back takes.
    WRITE_KEEP = 3600
    # When no replica acknowledged a claim: how long before the firing is tried again.
    UNREPLICATED_RETRY = 5.0

    def __init__(self, client: redis.Redis, keys: Keys, *, replica_wait_ms: int = 0) -> None:
        self.redis = client
        self.keys = keys
        self.replica_wait_ms = replica_wait_ms

    # -- health --------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except REDIS_DOWN:
            return False

    # -- declaration claims --------------------------------------------------------------
    def accept_declaration(
        self,
        fp: str,
        token: str,
        declaration: dict[str, Any],
        *,
        claim_ttl: int,
        now_ms: int,
        window_ms: int,
        limit: int,
    ) -> Claim | int:
        """Claim a declaration, reserve its turn to create a channel and queue it, in one
        step. The claim lives `claim_ttl` seconds past its turn. Returns the turn (epoch ms),
        or the Claim of the identical declaration that came first."""
        k = self.keys
        mine, value = _resent(
            lambda: self.redis.eval(
                _ACCEPT,
                4,
                k.creation_rate,
                k.claim(fp),
                k.declaration(token),
                k.declaration_queue,
                now_ms,
                window_ms,
                max(1, limit),
                f"pending|{token}",
                claim_ttl,
                token,
                _dump(declaration),
            )
        )
        if mine:
            return int(value)
        return _claim_of(value)

    def take_declaration(
        self,
        now_ms: int,
        lease_ms: int,
        token: str | None = None,
        *,
        late_ms: int = 0,
        holder: str = "",
    ) -> tuple[str, dict[str, Any]] | None:
        """The queued declaration `token` if its time has come (or, without a token, the first
        whose time came at least `late_ms` ago), leased to the caller for `lease_ms` under the
        fencing token `holder`; None when there is none (or another process holds it)."""
        k = self.keys

        def send() -> Any:
            return self.redis.eval(
                _TAKE_DECLARATION,
                1,
                k.declaration_queue,
                now_ms,
                now_ms + lease_ms,
                token or "",
                k.declaration(""),
                now_ms - late_ms,
                holder,
                k.declaration_lease(""),
            )

        # Named, it is sent again after a lost answer and answers as the first time; the first
        # due is not (a resend would take the next one), and stays leased until its lease ends.
        if token:
            taken = _resent(send)
        else:
            with _guard():
                taken = send()
        if not taken:
            return None
        return taken[0].decode(), _load(taken[1])

    def save_declaration(
        self,
        token: str,
        declaration: dict[str, Any],
        due_ms: int,
        *,
        holder: str = "",
        release: bool = False,
    ) -> None:
        """Record how far a queued declaration got, and when it may next be taken (the end of
        its lease, or its next try). With `holder`, only while it holds the lease: `Fenced`
        (nothing written) when another build took it over. `release`: the lease is let go in
        the same step (the build stops until its next try)."""
        k = self.keys
        saved = _resent(
            lambda: self.redis.eval(
                _SAVE_DECLARATION,
                3,
                k.declaration_lease(token),
                k.declaration(token),
                k.declaration_queue,
                holder,
                _dump(declaration),
                due_ms,
                token,
                "1" if release else "",
            )
        )
        if not saved:
            raise Fenced(f"declaration {token}")

    def renew_declaration(self, token: str, holder: str, lease_ms: int) -> bool:
        """The heartbeat of a build: its lease renewed for `lease_ms`; False when another build
        holds the declaration now."""
        k = self.keys
        now_ms = int(time.time() * 1000)
        return bool(
            _resent(
                lambda: self.redis.eval(
                    _RENEW_DECLARATION,
                    2,
                    k.declaration_lease(token),
                    k.declaration_queue,
                    holder,
                    lease_ms,
                    now_ms + lease_ms,
                    token,
                )
            )
        )

    def lease_of(self, token: str, holder: str) -> Fence:
        """The fence of the build holding declaration `token` under `holder`."""
        return Fence(self.keys.declaration_lease(token), holder)

    def finish_declaration(
        self,
        token: str,
        *,
        holder: str = "",
        claim: tuple[str, Escalation, int] | None = None,
        release: str | None = None,
    ) -> None:
        """The declaration's room is open, or rolled back: it leaves the queue; with `claim`
        (fingerprint, escalation, seconds) its claim says which room is open, with `release`
        (a fingerprint) the claim is given up; all in one step. With `holder`, only while it
        holds the lease: `Fenced` (nothing done) when another build took it over."""
        k = self.keys
        fp = claim[0] if claim else (release or "")
        value, ttl = "", 0
        if claim:
            _fp, esc, ttl = claim
            value = f"open|{esc.id}|{esc.channel_id}"

        def send() -> Any:
            return self.redis.eval(
                _FINISH_DECLARATION,
                5,
                k.declaration_lease(token),
                k.declaration_queue,
                k.declaration(token),
                k.claim(fp),
                k.declaration_names(token),
                holder,
                value,
                ttl,
                token,
                "1" if release else "",
            )

        with _guard():
            try:
                done = send()
            except REDIS_DOWN:
                # Its answer lost: if it landed, the lease and the declaration are gone now.
                done = send() or not self.redis.exists(k.declaration(token))
        if not done:
            raise Fenced(f"declaration {token}")

    def queued_declarations(self) -> list[tuple[str, float]]:
        """Every queued declaration's token with when it may next be taken (epoch ms)."""
        with _guard():
            queued = self.redis.zrange(self.keys.declaration_queue, 0, -1, withscores=True)
        return [(token.decode(), float(due)) for token, due in queued]

    def reserve_channel_name(self, name: str, token: str, ttl: int = 24 * 3600) -> str | None:
        """Make `name` the declaration `token`'s to create: "new" (it is now), "again" (it
        already was), or None (another declaration's)."""
        k = self.keys
        got = _resent(
            lambda: self.redis.eval(
                _RESERVE_NAME, 2, k.channel_name(name), k.declaration_names(token), token, ttl, name
            )
        )
        return {1: "new", 2: "again"}.get(int(got))

    def reserved_names(self, token: str) -> list[str]:
        """Every channel name the declaration `token` reserved."""
        with _guard():
            return sorted(
                n.decode() for n in self.redis.smembers(self.keys.declaration_names(token))
            )

    def free_channel_name(self, name: str, token: str) -> None:
        """Give up the declaration `token`'s reservation of `name` (no channel was made)."""
        _resent(lambda: self.redis.eval(_RELEASE, 1, self.keys.channel_name(name), token))

    def complete_claim(self, fp: str, esc: Escalation, ttl: int) -> None:
        value = f"open|{esc.id}|{esc.channel_id}"
        _resent(lambda: self.redis.set(self.keys.claim(fp), value, ex=ttl))

    def release_claim(self, fp: str) -> None:
        _resent(lambda: self.redis.delete(self.keys.claim(fp)))

    def first_delivery(self, event_id: str, ttl: int = 3600) -> bool:
        """True once per event id: Slack retries a delivery it thinks failed."""
        # The caller's own id as the value: sent again after a lost answer, it finds its own
        # claim and still counts as the first.
        call = _new_id()
        return bool(
            _resent(lambda: self.redis.eval(_FIRST, 1, self.keys.seen_event(event_id), call, ttl))
        )

    # -- escalations ---------------------------------------------------------------------
    def exists(self, esc_id: str) -> bool:
        with _guard():
            return bool(self.redis.exists(self.keys.escalation(esc_id)))

    def create(
        self, esc: Escalation, events: Iterable[Event], *, fence: Fence | None = None
    ) -> bool:
        """Store a new escalation with its first events, all or nothing, and only if there is
        none by its id: False when there is (another build made it). `fence` (a declaration's
        lease, see `holds_declaration`) is checked in the same transaction."""
        k = self.keys
        lines = [e.model_dump_json() for e in events]

        def write(raws: list[bytes | None]) -> tuple[bool, list[Write]]:
            if raws[0] is not None:
                return False, []
            writes: list[Write] = [
                lambda p: p.set(k.escalation(esc.id), esc.model_dump_json()),
                lambda p: p.set(k.channel(esc.channel_id), esc.id),
                lambda p: p.zadd(k.escalations, {esc.id: esc.declared_at.timestamp()}),
                lambda p: p.sadd(k.open, esc.id),
            ]
            if lines:
                writes.append(lambda p: p.rpush(k.timeline(esc.id), *lines))
            return True, writes

        return self._transact([k.escalation(esc.id)], f"escalation {esc.id}", write, fence=fence)

    def get(self, esc_id: str) -> Escalation | None:
        with _guard():
            raw = self.redis.get(self.keys.escalation(esc_id))
        return Escalation.model_validate_json(raw) if raw else None

    def by_channel(self, channel_id: str) -> Escalation | None:
        with _guard():
            esc_id = self.redis.get(self.keys.channel(channel_id))
        return self.get(esc_id.decode()) if esc_id else None

    def update(
        self,
        esc_id: str,
        change: Callable[[Escalation], tuple[Escalation, list[Event]]],
        *,
        fence: Fence | None = None,
    ) -> tuple[Escalation, list[Event]]:
        """Apply `change` to the current document and save it with its events, atomically.

        `change` is pure and may run more than once: on a concurrent write it is re-run on
        the fresh document (once), so the second of two simultaneous clicks sees the first.
        """
        key = self.keys.escalation(esc_id)

        def write(raw: bytes | None) -> tuple[tuple[Escalation, list[Event]], list[Write]]:
            if raw is None:
                raise KeyError(esc_id)
            current = Escalation.model_validate_json(raw)
            new, events = change(current)
            if new == current and not events:
                return (current, []), []
            new = new.model_copy(update={"version": current.version + 1})
            writes: list[Write] = [lambda p: p.set(key, new.model_dump_json())]
            if new.status is Status.RESOLVED:
                writes.append(lambda p: p.srem(self.keys.open, esc_id))
            if events:
                lines = [e.model_dump_json() for e in events]
                writes.append(lambda p: p.rpush(self.keys.timeline(esc_id), *lines))
            return (new, events), writes

        return self._transact(
            [key], f"escalation {esc_id}", lambda raws: write(raws[0]), fence=fence
        )

    def _atomically(
        self, key: str, what: str, write: Callable[[bytes | None], tuple[T, list[Write]]]
    ) -> T:
        """`_transact` on one key."""
        return self._transact([key], what, lambda raws: write(raws[0]))

    def _transact(
        self,
        keys: list[str],
        what: str,
        write: Callable[[list[bytes | None]], tuple[T, list[Write]]],
        *,
        fence: Fence | None = None,
    ) -> T:
        """Read `keys`, decide, and write what `write` says in one transaction; if another
        writer changed one of them meanwhile, decide again on the fresh values. People in one
        room act at once (three facts typed together, a click while a reminder fires): each of
        a handful of concurrent writers gets its turn, after a short random pause.

        Each attempt's writes carry an id of their own, stored in the same transaction. When
        the connection is lost mid-transaction (redis-py says so with a WatchError too), the
        answer to EXEC may be all that was lost: the id is read back, and a write that landed
        is done, never decided again on a state that already holds it. One that did not land
        is tried once more; a second loss is Redis being unavailable, not a conflict.

        `fence` (a lease key and the caller's token) is watched with `keys`: unless the caller
        holds the lease when the transaction runs, nothing is written and `Fenced` is raised
        (a build that outlived its lease cannot write over the one that took over)."""
        connection_lost = 0
        with _guard():
            for attempt in range(self.WRITE_ATTEMPTS):
                if attempt:
                    time.sleep(random.uniform(0, 0.005 * attempt))
                write_id = _new_id()
                sent = False
                with self.redis.pipeline(transaction=True) as pipe:
                    try:
                        if fence is None:
                            pipe.watch(*keys)
                        else:
                            pipe.watch(*keys, fence.key)
                            if pipe.get(fence.key) != fence.token.encode():
                                raise Fenced(what)
                        result, writes = write([pipe.get(key) for key in keys])
                        if not writes:
                            return result
                        pipe.multi()
                        for queued in writes:
                            queued(pipe)
                        pipe.set(self.keys.write(write_id), 1, ex=self.WRITE_KEEP)
                        sent = True
                        pipe.execute()
                        return result
                    except redis.WatchError as e:
                        if " occurred while watching " in str(e):
                            if sent and self._landed(write_id):
                                return result
                            connection_lost += 1
                            if connection_lost == 2:
                                raise Unavailable(UNAVAILABLE) from e
                        continue
        raise ConflictError(what)

    def _landed(self, write_id: str) -> bool:
        """Whether the write `write_id` is in Redis (its transaction ran)."""
        return bool(self.redis.exists(self.keys.write(write_id)))

    def append(self, esc_id: str, *events: Event, once: str | None = None) -> bool:
        """Add `events` to the timeline, once: sent again after a lost answer, it adds nothing
        more. With `once`, only the first append under that key adds anything (one
        note per pinned message, however many people pin it at once); False for the others."""
        if not events:
            return False
        k = self.keys
        call = _new_id()
        return bool(
            _resent(
                lambda: self.redis.eval(
                    _APPEND_ONCE,
                    2,
                    k.timeline(esc_id),
                    k.appended(esc_id),
                    once or call,
                    call,
                    "",
                    *(e.model_dump_json() for e in events),
                )
            )
        )

    def timeline(self, esc_id: str) -> list[Event]:
        with _guard():
            raw = self.redis.lrange(self.keys.timeline(esc_id), 0, -1)
        return [Event.model_validate_json(r) for r in raw]

    def delete(self, esc: Escalation) -> None:
        """Undo `create` (used when the room could not be finished)."""
        k = self.keys

        def send() -> None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(
                k.escalation(esc.id),
                k.timeline(esc.id),
                k.appended(esc.id),
                k.channel(esc.channel_id),
            )
            pipe.zrem(k.escalations, esc.id)
            pipe.srem(k.open, esc.id)
            pipe.execute()

        _resent(send)

    def open_ids(self) -> list[str]:
        with _guard():
            return sorted(m.decode() for m in self.redis.smembers(self.keys.open))

    def following_up_ids(self) -> list[str]:
        with _guard():
            return sorted(m.decode() for m in self.redis.smembers(self.keys.following_up))

    def track_follow_ups(self, esc_id: str, pending: bool) -> None:
        key = self.keys.following_up
        _resent(lambda: self.redis.sadd(key, esc_id) if pending else self.redis.srem(key, esc_id))

    def history(self, since: datetime, chunk: int = 500) -> list[tuple[Escalation, list[Event]]]:
        """Every escalation declared at or after `since`, oldest first, with its timeline
        (fetched in pipelined batches: one round trip per batch, not per escalation)."""
        with _guard():
            raw_ids = self.redis.zrangebyscore(self.keys.escalations, since.timestamp(), "+inf")
            escalations = self.get_many([i.decode() for i in raw_ids], chunk)
            history: list[tuple[Escalation, list[Event]]] = []
            for start in range(0, len(escalations), chunk):
                batch = escalations[start : start + chunk]
                pipe = self.redis.pipeline(transaction=False)
                for esc in batch:
                    pipe.lrange(self.keys.timeline(esc.id), 0, -1)
                for esc, lines in zip(batch, pipe.execute(), strict=True):
                    history.append((esc, [Event.model_validate_json(line) for line in lines]))
        return history

    def get_many(self, ids: list[str], chunk: int = 500) -> list[Escalation]:
        found = []
        with _guard():
            for start in range(0, len(ids), chunk):
                part = ids[start : start + chunk]
                raws = self.redis.mget([self.keys.escalation(i) for i in part])
                found.extend(Escalation.model_validate_json(r) for r in raws if r)
        return found

    # -- exactly-once firings ------------------------------------------------------------
    def begin_once(self, name: str, ttl: int, keep: int = ONCE_KEEP) -> str | float:
        """Claim one firing for `ttl` seconds: "mine"; "check" (mine, but an earlier attempt
        lapsed or lost its answer and may have posted: look before posting); "done" (it
        happened); or seconds until it may be tried again: an attempt is under way elsewhere
        until its claim lapses, or no replica acknowledged our claim in time."""
        key = self.keys.once(name)
        attempt = _new_id()
        if not self.replica_wait_ms:
            return _claim(_resent(lambda: self.redis.eval(_BEGIN_ONCE, 1, key, ttl, keep, attempt)))
        # WAIT counts the writes of its own connection: the claim, the question and the WAIT
        # all go over one.
        with _guard(), self.redis.client() as conn:
            claim = _claim(_resent(lambda: conn.eval(_BEGIN_ONCE, 1, key, ttl, keep, attempt)))
            if claim not in ("mine", "check") or self._replicated(conn):
                return claim
            # Withdrawn, as it was: a claim that had to look first still has to.
            if claim == "mine":
                conn.delete(key)
            else:
                conn.set(key, "unsure", ex=keep)
        log.warning(
            "no replica acknowledged the claim of %s within %d ms; trying it again in %.0f s "
            "rather than risk posting it twice after a failover",
            name,
            self.replica_wait_ms,
            self.UNREPLICATED_RETRY,
        )
        return self.UNREPLICATED_RETRY

    def _replicated(self, conn: redis.Redis) -> bool:
        """Whether a replica holds this connection's writes, or none is attached.

        Replication is asynchronous: a claim only the primary held is gone if a failover
        follows, and the firing would be claimed and posted again on the new primary. So a
        claim no replica acknowledged in time is withdrawn and the firing tried later; a
        primary with no replica at all (alone after a failover, or its replica down) cannot
        lose it to a failover, and the claim stands at once."""
        try:
            replicas = conn.execute_command("ROLE")[2]
        except redis.exceptions.NoPermissionError:
            # ROLE is in ACL's @dangerous category, which an ACL user may be denied.
            log.warning(
                "Redis refused ROLE to warroom's ACL user: firings no longer wait for a "
                "replica (see docs/operating.md)"
            )
            self.replica_wait_ms = 0
            return True
        return not replicas or conn.wait(1, self.replica_wait_ms) >= 1

    def take_turn(self, name: str, limit: int, window: float, call: str = "") -> bool:
        """Count one turn of `name` in the current window of `window` seconds (the window
        starts at its first turn); False when that is more than `limit`. `call`: the turn's
        id (a new one if not given); the same id counts once, however often it is sent."""
        seconds = max(1, math.ceil(window))
        count = self._count_once(self.keys.turns(name), call or _new_id(), seconds, seconds)
        return count <= limit

    def _count_once(self, key: str, call: str, keep: int, window: int = 0) -> int:
        """Advance the counter `key` once for `call`, and its count. The answer lost, the
        same call is sent again and answers the count the first one took."""
        return int(
            _resent(
                lambda: self.redis.eval(
                    _COUNT_ONCE, 2, key, self.keys.counted(f"{key}|{call}"), call, keep, window
                )
            )
        )

    def mailbox_mark(self, mailbox: str, validity: int) -> int | None:
        """The highest UID of `mailbox` read through at this UID validity; None when none
        (never read, or the server numbered its messages anew)."""
        with _guard():
            raw = self.redis.hmget(self.keys.mailbox_mark(mailbox), "validity", "uid")
        if raw[0] is None or raw[1] is None or int(raw[0]) != validity:
            return None
        return int(raw[1])

    def set_mailbox_mark(self, mailbox: str, validity: int, uid: int) -> None:
        key = self.keys.mailbox_mark(mailbox)
        with _guard():
            pipe = self.redis.pipeline()
            pipe.hset(key, mapping={"validity": validity, "uid": uid})
            pipe.hdel(key, f"tries:{validity}:{uid}")
            pipe.execute()

    def mailbox_try(self, mailbox: str, validity: int, uid: int) -> int:
        """Count one more attempt to read the message `uid` of `mailbox`; how many there were."""
        with _guard():
            return int(
                self.redis.hincrby(self.keys.mailbox_mark(mailbox), f"tries:{validity}:{uid}", 1)
            )

    def mailbox_read(self, mailbox: str, validity: int, uid: int) -> None:
        """The message `uid` of `mailbox` was read: its attempts start again from none."""
        with _guard():
            self.redis.hdel(self.keys.mailbox_mark(mailbox), f"tries:{validity}:{uid}")

    def finish_once(self, name: str, keep: int = ONCE_KEEP) -> None:
        _resent(lambda: self.redis.set(self.keys.once(name), "done", ex=keep))

    def abandon_once(self, name: str, *, unsure: bool = False, keep: int = ONCE_KEEP) -> None:
        """Give the claim up: nothing was posted; or, `unsure`, it may have been (the answer
        was lost), so whoever claims it next looks first."""
        key = self.keys.once(name)
        _resent(
            lambda: self.redis.set(key, "unsure", ex=keep) if unsure else self.redis.delete(key)
        )

    # -- drafts ------------------------------------------------------------------------------
    def save_draft(self, draft: Draft) -> None:
        with _guard():
            self.redis.set(self.keys.draft(draft.id), draft.model_dump_json(), ex=DRAFT_TTL)

    def begin_writing(self, draft_id: str, seconds: int) -> None:
        """Draft `draft_id` is being written, for at most `seconds` by this process."""
        k = self.keys

        def send() -> None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.sadd(k.drafts_writing, draft_id)
            pipe.set(k.draft_writing(draft_id), 1, ex=max(1, seconds))
            pipe.execute()

        _resent(send)

    def end_writing(self, draft_id: str) -> None:
        k = self.keys

        def send() -> None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.srem(k.drafts_writing, draft_id)
            pipe.delete(k.draft_writing(draft_id))
            pipe.execute()

        _resent(send)

    def abandoned_drafts(self) -> list[str]:
        """The drafts still being written whose process stopped holding them (it died)."""
        k = self.keys
        with _guard():
            ids = sorted(m.decode() for m in self.redis.smembers(k.drafts_writing))
            alive = [self.redis.exists(k.draft_writing(i)) for i in ids]
        return [i for i, held in zip(ids, alive, strict=True) if not held]

    def get_draft(self, draft_id: str) -> Draft | None:
        with _guard():
            raw = self.redis.get(self.keys.draft(draft_id))
        return Draft.model_validate_json(raw) if raw else None

    def update_draft(self, draft_id: str, change: Callable[[Draft], Draft]) -> Draft:
        """Apply `change` to the stored draft, atomically (two clicks at once: one wins, the
        other sees its result). KeyError when the draft is gone."""
        key = self.keys.draft(draft_id)

        def write(raw: bytes | None) -> tuple[Draft, list[Write]]:
            if raw is None:
                raise KeyError(draft_id)
            current = Draft.model_validate_json(raw)
            new = change(current)
            if new == current:
                return current, []
            return new, [lambda p: p.set(key, new.model_dump_json(), ex=DRAFT_TTL)]

        return self._atomically(key, f"draft {draft_id}", write)

    # -- model usage -------------------------------------------------------------------------
    def log_model_usage(self, at: datetime, entry: dict[str, Any]) -> None:
        """Add one model call (`entry`: escalation, kind, model, token counts) to the usage
        of `at`'s month: one round trip, which also trims and renews the month's expiry."""
        key = self.keys.model_usage(usage_month(at))
        with _guard():
            pipe = self.redis.pipeline()
            pipe.rpush(key, _dump({"at": at.astimezone(UTC).isoformat(), **entry}))
            pipe.ltrim(key, -USAGE_MAX_CALLS, -1)
            pipe.expire(key, USAGE_KEEP)
            pipe.execute()

    def model_usage(self, month: str) -> list[dict[str, Any]]:
        """Every model call logged in `month` ("2026-12"), oldest first."""
        with _guard():
            raw = self.redis.lrange(self.keys.model_usage(month), 0, -1)
        return [json.loads(r) for r in raw]

    def approve_draft(
        self, draft_id: str, approve: Callable[[Draft], Draft], record: Recording
    ) -> Approved:
        """An approval, as one unit: the draft with it; and, when it is the one that makes the
        draft approved, what `record` makes of it (the escalation's new state and timeline
        events, the Agent_Memory output filed under the next number, the decision logged), all
        in one transaction. All or nothing; a repeat is refused by `approve` (the draft says
        it is approved), and a lost answer is read back, never recorded twice. KeyError when
        the draft or its escalation is gone."""
        k = self.keys
        draft_key = k.draft(draft_id)
        stored = self.get_draft(draft_id)
        if stored is None:
            raise KeyError(draft_id)
        esc_id = stored.escalation
        keys = [draft_key, k.escalation(esc_id), k.memory_output_number(esc_id)]

        def write(raws: list[bytes | None]) -> tuple[Approved, list[Write]]:
            raw_draft, raw_esc, number = raws
            if raw_draft is None or raw_esc is None:
                raise KeyError(draft_id)
            current = Draft.model_validate_json(raw_draft)
            draft = approve(current)
            if draft == current:
                return Approved(current), []
            if not draft.approved_by:
                return Approved(draft), [
                    lambda p: p.set(draft_key, draft.model_dump_json(), ex=DRAFT_TTL)
                ]
            before = Escalation.model_validate_json(raw_esc)
            n = int(number or 0) + 1
            draft, esc, events, output, decision = record(draft, before, n)
            esc = esc.model_copy(update={"version": before.version + 1})
            kind, data = output
            lines = [e.model_dump_json() for e in events]
            writes: list[Write] = [
                lambda p: p.set(draft_key, draft.model_dump_json(), ex=DRAFT_TTL),
                lambda p: p.set(k.escalation(esc_id), esc.model_dump_json()),
                lambda p: p.set(k.memory_output_number(esc_id), n),
                lambda p: p.hset(k.memory_outputs(esc_id), f"{n}-{kind}", _dump(data)),
                lambda p: p.rpush(k.memory_decisions(esc_id), _dump(decision)),
                lambda p: p.sadd(k.memory_escalations, esc_id),
            ]
            if lines:
                writes.append(lambda p: p.rpush(k.timeline(esc_id), *lines))
            return Approved(draft, before, esc, events, n, output), writes

        return self._transact(keys, f"draft {draft_id}", write)

    # -- App Home ----------------------------------------------------------------------------
    def note_home_viewer(self, user: str, at: datetime) -> None:
        with _guard():
            self.redis.zadd(self.keys.home_viewers, {user: at.timestamp()})

    def home_viewers(self, since: datetime) -> list[str]:
        """Who opened the tab since `since`, the most recent first."""
        with _guard():
            raw = self.redis.zrevrangebyscore(self.keys.home_viewers, "+inf", since.timestamp())
        return [u.decode() for u in raw]

    def bump_home_generation(self) -> int:
        """Count one change for the Home tabs to show: once, even if the answer is lost."""
        return self._count_once(self.keys.home_generation, _new_id(), 3600)

    def home_generation(self) -> int:
        with _guard():
            return int(self.redis.get(self.keys.home_generation) or 0)

    def claim_home_refresher(self, token: str, lease_ms: int) -> bool:
        """True if the caller now refreshes the tabs (no other process does)."""
        with _guard():
            return bool(self.redis.set(self.keys.home_refresher, token, nx=True, px=lease_ms))

    def release_home_refresher(self, token: str) -> None:
        _resent(lambda: self.redis.eval(_RELEASE, 1, self.keys.home_refresher, token))

    def home_publish_turn(
        self, now_ms: int, window_ms: int, limit: int, token: str = "", lease_ms: int = 0
    ) -> tuple[int, int, bool]:
        """(when the caller may call views.publish, epoch ms; the current generation; whether
        `token` still holds the refresh lease, renewed by `lease_ms` if so)."""
        k = self.keys
        with _guard():
            slot, generation, held = self.redis.eval(
                _PUBLISH_TURN,
                3,
                k.home_publish_rate,
                k.home_generation,
                k.home_refresher,
                now_ms,
                window_ms,
                limit,
                token,
                lease_ms,
            )
        return int(slot), int(generation), bool(held)

    # -- IC rotation ---------------------------------------------------------------------
    def next_in_rotation(self, candidates: tuple[str, ...], pick: str) -> str | None:
        """Round-robin over the configured commanders, shared by every process. `pick` names
        the choice (a declaration's token): asked again (its answer lost, or its build tried
        again) it is the same commander, and the rotation moves on once."""
        if not candidates:
            return None
        n = self._count_once(self.keys.ic_rotation, pick, COUNTED_KEEP)
        return candidates[(n - 1) % len(candidates)]


def usage_month(at: datetime) -> str:
    """The calendar month (UTC) model usage at `at` is kept under: "2026-12"."""
    return at.astimezone(UTC).strftime("%Y-%m")


def _new_id() -> str:
    """An id for one write or call, unique across processes."""
    return uuid.uuid4().hex


def _dump(data: Any) -> str:
    # Memory documents hold what YAML can show; anything JSON cannot (a stray datetime) is
    # kept as its text rather than refused.
    return json.dumps(data, ensure_ascii=False, default=str)


def _load(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


@dataclass(frozen=True)
class EscalationMemory:
    """Everything Agent_Memory holds about one escalation (None or empty where nothing is)."""

    id: str
    instruction: dict[str, Any] | None
    decisions: list[dict[str, Any]]
    review: dict[str, Any] | None
    # "<n>-<kind>" -> the output, in the order of <n>.
    outputs: dict[str, dict[str, Any]]


def _by_number(outputs: dict[bytes, bytes]) -> dict[str, dict[str, Any]]:
    named = {name.decode(): json.loads(raw) for name, raw in outputs.items()}
    return dict(sorted(named.items(), key=lambda item: int(item[0].split("-", 1)[0])))


class MemoryRecords:
    """The Agent_Memory documents in Redis (`bot.memory` lays them out as files). Raises
    `Unavailable` when Redis is down, like `Store`."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    # -- one escalation's documents ---------------------------------------------------------
    def put_instruction(self, esc_id: str, data: dict[str, Any]) -> None:
        self._put(self.keys.memory_instruction(esc_id), esc_id, data)

    def put_review(self, esc_id: str, data: dict[str, Any]) -> None:
        self._put(self.keys.memory_review(esc_id), esc_id, data)

    def _put(self, key: str, esc_id: str, data: dict[str, Any]) -> None:
        def send() -> None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(key, _dump(data))
            pipe.sadd(self.keys.memory_escalations, esc_id)
            pipe.execute()

        _resent(send)

    def append_decision(self, esc_id: str, entry: dict[str, Any]) -> None:
        """One line of the decision log, once (a resend after a lost answer adds nothing)."""
        k = self.keys
        call = _new_id()
        _resent(
            lambda: self.redis.eval(
                _APPEND_ONCE,
                3,
                k.memory_decisions(esc_id),
                k.memory_appended(esc_id),
                k.memory_escalations,
                call,
                call,
                esc_id,
                _dump(entry),
            )
        )

    def decisions(self, esc_id: str) -> list[dict[str, Any]]:
        with _guard():
            raw = self.redis.lrange(self.keys.memory_decisions(esc_id), 0, -1)
        return [json.loads(r) for r in raw]

    def add_output(self, esc_id: str, kind: str, data: dict[str, Any]) -> int:
        """File an output under the next number of its escalation; returns the number."""
        k = self.keys
        call = _new_id()
        return int(
            _resent(
                lambda: self.redis.eval(
                    _ADD_OUTPUT,
                    4,
                    k.memory_output_number(esc_id),
                    k.memory_outputs(esc_id),
                    k.memory_escalations,
                    k.memory_appended(esc_id),
                    kind,
                    _dump(data),
                    esc_id,
                    call,
                )
            )
        )

    def outputs(self, esc_id: str) -> dict[str, dict[str, Any]]:
        """ "<n>-<kind>" -> output, in the order of <n>."""
        with _guard():
            raw = self.redis.hgetall(self.keys.memory_outputs(esc_id))
        return _by_number(raw)

    def escalation_ids(self) -> list[str]:
        with _guard():
            return sorted(m.decode() for m in self.redis.smembers(self.keys.memory_escalations))

    def escalation(self, esc_id: str) -> EscalationMemory:
        """All of one escalation's documents, in one round trip."""
        k = self.keys
        with _guard():
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(k.memory_instruction(esc_id))
            pipe.lrange(k.memory_decisions(esc_id), 0, -1)
            pipe.get(k.memory_review(esc_id))
            pipe.hgetall(k.memory_outputs(esc_id))
            instruction, decisions, review, outputs = pipe.execute()
        return EscalationMemory(
            id=esc_id,
            instruction=_load(instruction),
            decisions=[json.loads(d) for d in decisions],
            review=_load(review),
            outputs=_by_number(outputs),
        )

    # -- the shared knowledge -------------------------------------------------------------
    def append_lessons(self, entry: dict[str, Any]) -> None:
        k = self.keys
        call = _new_id()
        _resent(
            lambda: self.redis.eval(
                _APPEND_ONCE,
                2,
                k.memory_lessons,
                k.memory_lessons_appended,
                call,
                call,
                "",
                _dump(entry),
            )
        )

    def lessons(self) -> list[dict[str, Any]]:
        with _guard():
            return [json.loads(r) for r in self.redis.lrange(self.keys.memory_lessons, 0, -1)]

    def put_customer_insights(self, data: Any) -> None:
        _resent(lambda: self.redis.set(self.keys.memory_customer_insights, _dump(data)))

    def customer_insights(self) -> Any:
        with _guard():
            return _load(self.redis.get(self.keys.memory_customer_insights))

    # -- bringing a tree written before Redis held memory ------------------------------------
    def adopt(self, memory: EscalationMemory) -> list[str]:
        """Take one escalation's documents from files, keeping whatever Redis already has:
        a document only if Redis has none, the decisions only if Redis has no decision,
        each output under its own number unless that number is taken (and the counter moved
        past them). Returns what was taken, by file kind."""
        k = self.keys
        esc_id = memory.id
        taken: list[str] = []
        with _guard():
            pipe = self.redis.pipeline(transaction=True)
            if memory.instruction is not None:
                pipe.set(k.memory_instruction(esc_id), _dump(memory.instruction), nx=True)
            if memory.review is not None:
                pipe.set(k.memory_review(esc_id), _dump(memory.review), nx=True)
            pipe.exists(k.memory_decisions(esc_id))
            for name, output in memory.outputs.items():
                pipe.hsetnx(k.memory_outputs(esc_id), name, _dump(output))
            results = iter(pipe.execute())
            if memory.instruction is not None and next(results):
                taken.append("instruction")
            if memory.review is not None and next(results):
                taken.append("review")
            has_decisions = next(results)
            taken.extend("output" for _name in memory.outputs if next(results))
        # The rest sets only what is not set yet: sent again after a lost answer, it adds
        # nothing more.
        if memory.decisions and not has_decisions:
            taken.append("decisions")
        numbers = [int(name.split("-", 1)[0]) for name in memory.outputs]

        def send() -> None:
            pipe = self.redis.pipeline(transaction=True)
            if "decisions" in taken:
                lines = (_dump(d) for d in memory.decisions)
                pipe.eval(_PUSH_IF_EMPTY, 1, k.memory_decisions(esc_id), *lines)
            if numbers:
                # The counter must pass every number on file: the next output gets a new one.
                pipe.eval(
                    "local n = tonumber(redis.call('get', KEYS[1]) or '0') "
                    "if n < tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1]) end",
                    1,
                    k.memory_output_number(esc_id),
                    max(numbers),
                )
            if taken:
                pipe.sadd(k.memory_escalations, esc_id)
            pipe.execute()

        _resent(send)
        return taken

    def adopt_lessons(self, entries: list[dict[str, Any]]) -> bool:
        """The lessons on file, if Redis has none yet (so a second import adds nothing)."""
        if not entries:
            return False
        with _guard():
            if self.redis.exists(self.keys.memory_lessons):
                return False
        lines = [_dump(e) for e in entries]
        _resent(lambda: self.redis.eval(_PUSH_IF_EMPTY, 1, self.keys.memory_lessons, *lines))
        return True


@contextmanager
def _guard() -> Iterator[None]:
    """Turn Redis connection failures into `Unavailable` with a message for people."""
    try:
        yield
    except REDIS_DOWN as e:
        raise Unavailable(UNAVAILABLE) from e
    except (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError) as e:
        # A full Redis under `noeviction`, or a replica: writes are refused, reads still work.
        raise Unavailable(REFUSING_WRITES) from e
    except redis.ResponseError as e:
        # NOREPLICAS: a primary with `min-replicas-to-write` and no replica in sync refuses
        # writes rather than take ones a failover could lose (see docs/operating.md);
        # redis-py has no class of its own for it.
        if str(e).startswith("NOREPLICAS") or ": NOREPLICAS " in str(e):
            raise Unavailable(REFUSING_WRITES) from e
        raise


def _resent(send: Callable[[], T]) -> T:
    """Send a command that is safe to send twice (a script keyed by the call's own id, which
    answers a repeat as it answered the first; a write that sets what is already set); if its
    answer is lost, send it once more. The client sends nothing again by itself (see
    `bot.boot.redis_from_url`): a write that is not safe to repeat fails instead, and its
    caller reads back whether it landed, or tells the person that Redis could not be reached."""
    with _guard():
        try:
            return send()
        except REDIS_DOWN:
            return send()


# For the other modules that talk to Redis (the scheduler's job store): the same failures,
# the same message, and the same resend of what is safe to send twice.
redis_guard = _guard
redis_resent = _resent
