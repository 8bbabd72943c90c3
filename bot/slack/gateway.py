"""All Web API calls the app makes, and the one place Slack's error codes get their meaning.

Services call the gateway and never see slack_sdk: an error code that means something to them
becomes a value (an invite problem in words) or an exception of this module (`RoomGone`), or a
`WarroomError` whose message is for people; `describe` says any other failure in a few words.
Calls that do not depend on each other run at once on a thread pool: against Slack a war room
costs its chain of round trips, not the sum of its calls.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import contextmanager
from http.client import HTTPException
from typing import Any, TypeVar
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import HttpRequest
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.models.views import View
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.domain.errors import Unavailable, WarroomError
from bot.metrics import Metrics
from bot.slack import blocks
from bot.slack.blocks import Message

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")

# Invite errors that concern one invitee, not the call: retried one by one so the rest get in.
_PER_USER_INVITE_ERRORS = {
    "user_not_found",
    "already_in_channel",
    "cant_invite",
    "user_is_restricted",
    "user_is_ultra_restricted",
    "user_disabled",
    "cant_invite_self",
}


# What an invite failure means to the people in the room.
_INVITE_REASONS = {
    "user_not_found": "not found in this workspace (they may have left)",
    "user_disabled": "deactivated",
    "cant_invite": "Slack does not allow inviting them here",
    "user_is_restricted": "a guest who cannot be invited to this channel",
    "user_is_ultra_restricted": "a single-channel guest",
}

# A conversation's id (a user's id opens their DM with the app), as opposed to a channel name.
_CHANNEL_ID = re.compile(r"[CGDU][A-Z0-9]{6,}")

# Slack's answers when a war room can no longer be posted in.
_ROOM_GONE = frozenset({"is_archived", "channel_not_found", "not_in_channel"})


class RoomGone(Exception):
    """The channel was archived, deleted or closed to the bot: nothing can be posted there."""

    def __init__(self, channel: str, code: str) -> None:
        super().__init__(f"{channel}: {code}")
        self.code = code


def error_code(e: SlackApiError) -> str:
    data = e.response.data if isinstance(e.response.data, dict) else {}
    return str(data.get("error") or f"http_{e.response.status_code}")


def describe(e: BaseException) -> str:
    """A failure in a few words for a person: Slack's error code, or the kind of failure."""
    if isinstance(e, SlackApiError):
        return f"Slack said {error_code(e)}"
    if isinstance(e, RoomGone):
        return f"Slack said {e.code}"
    if isinstance(e, AnswerLost):
        return "Slack's answer was lost"
    if isinstance(e, Unavailable):
        return "Redis could not be reached"
    return type(e).__name__


def invite_problem(code: str) -> str:
    """Why someone could not be invited, in words."""
    return _INVITE_REASONS.get(code, code)


class MeteredWebClient(WebClient):
    """WebClient that counts calls and failures by Slack's error code."""

    def __init__(self, *args: Any, metrics: Metrics | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        if self.metrics is not None:
            self.metrics.slack_api_calls.labels(api_method).inc()
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as e:
            if self.metrics is not None:
                self.metrics.slack_api_errors.labels(api_method, error_code(e)).inc()
            raise


# Calls that do something new each time they are made: repeated after an answer was lost, they
# would do it twice (a second reminder, an orphaned channel). Every other method we call reads,
# or sets a state (invite, pin, topic, update, publish), so doing it again is doing it once.
_NOT_REPEATABLE = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "conversations.create", "chat.scheduleMessage"}
)


def _method_of(request: HttpRequest) -> str:
    return request.url.rstrip("/").rsplit("/", 1)[-1]


def _never_sent(error: BaseException | None) -> bool:
    """Whether the request never reached Slack (the connection was refused)."""
    reason = error.reason if isinstance(error, URLError) else error
    return isinstance(reason, ConnectionRefusedError)


class _RepeatableOnConnectionError(ConnectionErrorRetryHandler):
    """A dropped connection is retried only where repeating cannot do a thing twice."""

    def _can_retry(self, *, state, request, response=None, error=None):  # type: ignore[no-untyped-def]
        if _method_of(request) in _NOT_REPEATABLE and not _never_sent(error):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


class _RepeatableOnServerError(ServerErrorRetryHandler):
    """A 5xx (Slack, or a gateway before it, may have acted) is retried only where repeating
    cannot do a thing twice."""

    def _can_retry(self, *, state, request, response=None, error=None):  # type: ignore[no-untyped-def]
        if _method_of(request) in _NOT_REPEATABLE:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


class _BoundedRateLimitWaits(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler, waiting at most `max_wait` seconds in all for one call: a
    Retry-After that would take it past that ends the call with `ratelimited` at once. A call
    must not sit in a wait for longer than the work it belongs to is leased (a room's build is
    taken over then): the work is tried again later instead, from what it recorded."""

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state, request, response=None, error=None):  # type: ignore[no-untyped-def]
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        waited = float((state.custom_values or {}).get("waited", 0.0))
        wait = _retry_after(response)
        if waited + wait > self.max_wait:
            log.warning(
                "%s: Slack asks to wait %.0f s, past the %.0f s a call may wait; trying later",
                _method_of(request),
                wait,
                self.max_wait,
            )
            return False
        state.custom_values = {**(state.custom_values or {}), "waited": waited + wait + 1}
        return True


def _retry_after(response: Any) -> float:
    for name, values in (response.headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return float(values[0] if isinstance(values, list) else values)
            except (TypeError, ValueError, IndexError):
                return 1.0
    return 1.0


def build_client(
    token: str, base_url: str, metrics: Metrics | None = None, *, max_wait: float = 30.0
) -> WebClient:
    """The one WebClient: Slack's base URL from settings; 429s (Slack did nothing; waits for
    Retry-After) retried by slack-sdk's own handler, at most `max_wait` seconds in all per
    call; 5xx and dropped connections only for calls that can be repeated (see
    `_NOT_REPEATABLE`; a post whose answer was lost is looked for by its key instead, see
    `SlackGateway.post`)."""
    return MeteredWebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        metrics=metrics,
        retry_handlers=[
            _RepeatableOnConnectionError(max_retry_count=2),
            _BoundedRateLimitWaits(max_retry_count=5, max_wait=max_wait),
            _RepeatableOnServerError(max_retry_count=2),
        ],
    )


class AnswerLost(Exception):
    """Slack may have done it: the call was sent and no answer came (a dropped connection, a
    timeout, a gateway's 5xx)."""


def answer_lost(e: BaseException) -> bool:
    """Whether `e` leaves it unknown if Slack acted."""
    if isinstance(e, AnswerLost):
        return True
    if isinstance(e, SlackApiError):
        status = getattr(e.response, "status_code", None)
        return isinstance(status, int) and status >= 500
    if isinstance(e, ValueError):  # not JSON: a proxy's error page, a cut-off body
        return True
    return isinstance(e, (OSError, HTTPException)) and not _never_sent(e)


def may_pass(e: BaseException) -> bool:
    """Whether a failure talking to Slack may pass if the work is tried again later: an
    answer lost, Slack's own trouble (5xx), a rate limit still in force after the waits."""
    if answer_lost(e):
        return True
    if isinstance(e, SlackApiError):
        return error_code(e) == "ratelimited" or getattr(e.response, "status_code", 0) == 429
    return isinstance(e, (OSError, HTTPException))


# Message metadata: the key a post carries, so that a post whose answer was lost is found.
POST_KEY_EVENT = "warroom_post"


class ChannelNameExhausted(Exception):
    pass


def _refused(name: str, e: SlackApiError) -> WarroomError:
    code = error_code(e)
    log.error("conversations.create failed for %s: %s", name, code)
    return WarroomError(
        f"Slack refused to create the war-room channel ({code}). Nothing was created; try "
        "again, and if it keeps failing check the app's channel permissions."
    )


class ShuttingDown(Exception):
    """The process is stopping and its Slack pool takes no more calls: the work that asked
    is left to the next process, never failed for it."""


def shutting_down(e: BaseException) -> bool:
    """Whether `e` is the process's own shutdown (this pool's, or the interpreter's, which
    stops every pool), not a failure of the work."""
    if isinstance(e, (ShuttingDown, CancelledError)):
        return True
    return isinstance(e, RuntimeError) and "after" in str(e) and "shutdown" in str(e)


class SlackGateway:
    def __init__(self, client: WebClient, *, threads: int = 32) -> None:
        self.client = client
        self._worker = threading.local()
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="slack-io", initializer=self._mark_worker
        )
        self._bot_user_id: str | None = None
        self._profiles: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- concurrency -----------------------------------------------------------------------
    def _mark_worker(self) -> None:
        self._worker.on_pool = True

    def _on_pool(self) -> bool:
        return bool(getattr(self._worker, "on_pool", False))

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run `fn` on the pool. From a task already on it, `fn` runs right there: a task that
        waited on the pool for work of its own could wait for good once every worker did.
        `ShuttingDown` when the pool takes no more work."""
        if self._on_pool():
            done: Future[T] = Future()
            try:
                done.set_result(fn(*args, **kwargs))
            except Exception as e:
                done.set_exception(e)
            return done
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except RuntimeError as e:
            raise ShuttingDown(str(e)) from e

    def together(self, calls: Mapping[K, Callable[[], Any]]) -> dict[K, Any]:
        """Run independent calls at once; each named result is its value or the exception it
        raised. From a task on the pool they run one after the other (see `submit`).
        `ShuttingDown` when the pool stopped before running them all."""
        futures = {name: self.submit(call) for name, call in calls.items()}
        results: dict[K, Any] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except CancelledError as e:
                raise ShuttingDown("the Slack pool stopped before this call ran") from e
            except Exception as e:
                results[name] = e
        return results

    # -- identity --------------------------------------------------------------------------
    def user_name(self, user: str) -> str | None:
        """The name people know `user` by in Slack (display name, else real name, else
        username); None when Slack will not say."""
        profile = self._profile(user)
        if profile is None:
            return None
        details = profile.get("profile") or {}
        return (
            details.get("display_name")
            or details.get("real_name")
            or profile.get("real_name")
            or profile.get("name")
            or None
        )

    def full_name(self, user: str) -> str | None:
        """`user`'s full name (real name, else the name they go by): how a letter is signed."""
        profile = self._profile(user)
        if profile is None:
            return None
        details = profile.get("profile") or {}
        return details.get("real_name") or profile.get("real_name") or self.user_name(user)

    def user_email(self, user: str) -> str | None:
        """`user`'s email from their Slack profile (users.info, with users:read.email): how
        their support desk agent is found. None when Slack will not say."""
        email = ((self._profile(user) or {}).get("profile") or {}).get("email")
        if not email:
            # Kept from before the email was there (or before the scope was granted): asked
            # again, once per letter at most.
            self._profiles.pop(user, None)
            email = ((self._profile(user) or {}).get("profile") or {}).get("email")
        return str(email) if email else None

    def _profile(self, user: str) -> dict[str, Any] | None:
        """users.info's user, kept for the life of the process."""
        if user not in self._profiles:
            try:
                self._profiles[user] = dict(self.client.users_info(user=user)["user"])
            except SlackApiError as e:
                log.warning("name of %s unknown: %s", user, error_code(e))
                return None
        return self._profiles[user]

    @property
    def bot_user_id(self) -> str:
        if self._bot_user_id is None:
            self._bot_user_id = str(self.client.auth_test()["user_id"])
        return self._bot_user_id

    # -- channels --------------------------------------------------------------------------
    def create_channel(
        self,
        name_for: Callable[[int], str],
        *,
        private: bool,
        reserve: Callable[[str], str | None] = lambda _name: "new",
        max_attempts: int = 100,
    ) -> tuple[str, str]:
        """Create a new channel: `name_for(1)`, or on `name_taken` `name_for(2)`, ... .
        Returns (channel id, name).

        `reserve(name)` makes a name the caller's before it is tried: "new" (it is now),
        "again" (it already was: a call before may have created it, so it is looked for
        first), or None (someone else's: skip it). A call whose answer was lost is never
        repeated blindly: the channel is looked for among the app's channels and used if
        Slack made it. A name reserved "again" that Slack says is taken is looked for too: an
        earlier build of the same room (one that outlived its lease) may have made it just
        now, and then it is this room's channel, not a reason to make `-2`. Never reuses a
        channel the app did not create."""
        for attempt in range(1, max_attempts + 1):
            name = name_for(attempt)
            mine = reserve(name)
            if mine is None:
                continue
            found = self.find_channel(name) if mine == "again" else None
            channel = found or self._create(name, private)
            if channel is None and mine == "again":
                channel = self.find_channel(name)
            if channel:
                return channel, name
        raise ChannelNameExhausted(name_for(1))

    def _create(self, name: str, private: bool, *, again: bool = True) -> str | None:
        """The new channel's id; None when the name is taken. If the answer is lost, the
        channel is looked for, and created once more only if Slack did not make it."""
        try:
            resp = self.client.conversations_create(name=name, is_private=private)
            return str(resp["channel"]["id"])
        except SlackApiError as e:
            if error_code(e) == "name_taken":
                return None
            if error_code(e) == "ratelimited":
                raise  # still, after slack-sdk's waits: for later
            if not answer_lost(e):
                raise _refused(name, e) from e
            if not again:
                raise AnswerLost(f"conversations.create #{name}") from e
            log.warning("the answer to creating #%s was lost (%s); looking for it", name, e)
        except Exception as e:
            if not answer_lost(e):
                raise
            if not again:
                raise AnswerLost(f"conversations.create #{name}") from e
            log.warning("the answer to creating #%s was lost (%s); looking for it", name, e)
        time.sleep(0.2)
        return self.find_channel(name) or self._create(name, private, again=False)

    def find_channel(self, name: str) -> str | None:
        """The id of the unarchived channel `name` that this app created, or None. Raises
        when Slack cannot be asked."""
        bot = self.bot_user_id
        for channel in self._app_channels():
            if channel.get("name") == name and channel.get("creator") == bot:
                return str(channel["id"])
        return None

    def _app_channels(self) -> Iterator[dict[str, Any]]:
        """Every unarchived channel the app is in, page by page (`users.conversations`)."""
        cursor = None
        while True:
            page = self.client.users_conversations(
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=999,
                cursor=cursor,
            )
            yield from page.get("channels") or ()
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def invite(self, channel: str, users: Sequence[str]) -> dict[str, str]:
        """Invite everyone who can be; returns {user: why not, in words} for those who could
        not."""
        return {user: invite_problem(code) for user, code in self._invite(channel, users).items()}

    def _invite(self, channel: str, users: Sequence[str]) -> dict[str, str]:
        if not users:
            return {}
        try:
            resp = self.client.conversations_invite(channel=channel, users=list(users), force=True)
        except SlackApiError as e:
            code = error_code(e)
            data = e.response.data if isinstance(e.response.data, dict) else {}
            failed = _failed_invites(data)
            if failed:
                return failed
            if code in _PER_USER_INVITE_ERRORS and len(users) > 1:
                return self._invite_one_by_one(channel, users)
            if code in _PER_USER_INVITE_ERRORS:
                return {} if code == "already_in_channel" else {users[0]: code}
            raise
        return _failed_invites(resp.data if isinstance(resp.data, dict) else {})

    def _invite_one_by_one(self, channel: str, users: Sequence[str]) -> dict[str, str]:
        def one(user: str) -> str | None:
            try:
                self.client.conversations_invite(channel=channel, users=[user])
            except SlackApiError as e:
                code = error_code(e)
                return None if code == "already_in_channel" else code
            return None

        results = self.together({u: (lambda u=u: one(u)) for u in users})
        failed = {}
        for user, result in results.items():
            if isinstance(result, Exception):
                failed[user] = type(result).__name__
            elif result:
                failed[user] = result
        return failed

    def usergroup_members(self, group_ids: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """Members of every group, in order; plus {group: error} for groups that failed."""
        return self.usergroup_members_later(group_ids)()

    def usergroup_members_later(
        self, group_ids: Iterable[str]
    ) -> Callable[[], tuple[list[str], dict[str, str]]]:
        """Start looking up every group at once, now; the function returned waits for them
        and answers as `usergroup_members`. The caller does other calls meanwhile, and no
        task on the pool waits on the pool for the groups."""
        groups = list(dict.fromkeys(group_ids))

        def users_of(group: str) -> list[str]:
            return list(self.client.usergroups_users_list(usergroup=group)["users"])

        futures = {g: self.submit(users_of, g) for g in groups}

        def collect() -> tuple[list[str], dict[str, str]]:
            members: dict[str, None] = {}
            failed: dict[str, str] = {}
            for group, future in futures.items():
                try:
                    members.update(dict.fromkeys(future.result()))
                except CancelledError as e:
                    raise ShuttingDown("the Slack pool stopped before this call ran") from e
                except SlackApiError as e:
                    failed[group] = error_code(e)
                except Exception as e:
                    failed[group] = type(e).__name__
            return list(members), failed

        return collect

    def set_topic(self, channel: str, text: str) -> None:
        self.client.conversations_setTopic(channel=channel, topic=text)

    def archive(self, channel: str) -> None:
        with _unless("already_archived"):
            self.client.conversations_archive(channel=channel)

    def members(self, channel: str) -> frozenset[str] | None:
        """Who is in the channel, every page of it; None when Slack will not say (the bot was
        removed, ...)."""
        members: set[str] = set()
        cursor = None
        try:
            while True:
                # 1,000 a page, the most Slack gives: one call for any war room of people.
                resp = self.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
                members.update(resp.get("members") or ())
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return frozenset(members)
        except SlackApiError as e:
            log.warning("members of %s unknown: %s", channel, error_code(e))
            return None

    # -- reading the room ---------------------------------------------------------------------
    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One message of the channel, in a thread or not; None when it is gone."""
        try:
            found = self.client.conversations_replies(channel=channel, ts=ts, limit=1)
        except SlackApiError as e:
            if error_code(e) in ("thread_not_found", "message_not_found"):
                return None
            raise
        return next((m for m in found.get("messages") or () if m.get("ts") == ts), None)

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except SlackApiError as e:
            log.warning("no permalink for %s %s: %s", channel, ts, error_code(e))
            return None

    def recent_messages(self, channel: str, since: float, limit: int) -> list[dict[str, Any]]:
        """What people said in the channel since `since` (epoch seconds), the newest `limit`
        top-level messages, oldest first; the app's own messages left out."""
        found: list[dict[str, Any]] = []
        cursor = None
        try:
            while len(found) < limit:
                page = self.client.conversations_history(
                    channel=channel, oldest=f"{since:.6f}", limit=min(200, limit), cursor=cursor
                )
                found += [
                    m
                    for m in page.get("messages") or ()
                    if m.get("user") and m.get("user") != self.bot_user_id and not m.get("bot_id")
                ]
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as e:
            log.warning("the room's messages in %s unread: %s", channel, error_code(e))
        found.sort(key=lambda m: float(m.get("ts") or 0))
        return found[-limit:]

    # -- messages --------------------------------------------------------------------------
    def post(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None = None,
        key: str | None = None,
        look_first: bool = False,
    ) -> str:
        """Post; RoomGone when the channel can no longer be posted in.

        With `key` (an idempotency key, unique to what is posted) the message carries it, and a
        post whose answer was lost is never repeated blindly: the channel is searched for the
        key, and the message posted again only if it is not there. AnswerLost when even that
        cannot be known. `look_first`: search before the first post too (work taken up again
        after a process died, which may have posted it)."""
        if key and look_first:
            try:
                found = self.find_posted(channel, key, thread_ts=thread_ts)
            except (SlackApiError, RoomGone) as e:  # a channel the app may post in, not read
                log.warning("could not look for %s in %s first: %s", key, channel, describe(e))
                found = None
            if found:
                return found
        return self._post(channel, thread_ts, key, text=message.text, blocks=message.blocks)

    def post_text(
        self, channel: str, text: str, *, thread_ts: str | None = None, key: str | None = None
    ) -> str:
        """Post mrkdwn the bot wrote (people's words in it already inert), as verbatim
        sections so Slack adds no links or mentions of its own."""
        return self._post(
            channel, thread_ts, key, text=blocks.fallback(text), blocks=blocks.text_blocks(text)
        )

    def find_posted(
        self, channel: str, key: str, *, thread_ts: str | None = None, within: int = 200
    ) -> str | None:
        """The ts of the message carrying `key` among the channel's (or thread's) newest
        `within` messages, or None. Raises when Slack cannot be asked."""
        if not _CHANNEL_ID.fullmatch(channel):
            # A channel by name (the exec channel in warroom.yaml): chat.postMessage takes
            # one, conversations.history only an id.
            found = self.channel_named(channel)
            if found is None:
                return None
            channel = found
        try:
            if thread_ts:
                page = self.client.conversations_replies(
                    channel=channel, ts=thread_ts, limit=within, include_all_metadata=True
                )
            else:
                page = self.client.conversations_history(
                    channel=channel, limit=within, include_all_metadata=True
                )
        except SlackApiError as e:
            if error_code(e) in _ROOM_GONE:
                raise RoomGone(channel, error_code(e)) from e
            raise
        for m in page.get("messages") or ():
            metadata = m.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == POST_KEY_EVENT and payload.get("key") == key:
                return str(m["ts"])
        return None

    def channel_named(self, name: str) -> str | None:
        """The id of the unarchived channel `name` (or `#name`) that the app is in, or None."""
        name = name.lstrip("#")
        return next((str(c["id"]) for c in self._app_channels() if c.get("name") == name), None)

    def tell(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        """A message only `user` sees (a refusal, a mistake pointed out): ephemeral where
        they are, or in the app's DM with them when they are not in the channel."""
        try:
            self.client.chat_postEphemeral(
                channel=channel,
                user=user,
                thread_ts=thread_ts,
                text=blocks.fallback(text),
                blocks=blocks.text_blocks(text),
            )
        except SlackApiError as e:
            if error_code(e) not in ("user_not_in_channel", "channel_not_found"):
                raise
            self.post_text(user, text)

    def delete(self, channel: str, ts: str) -> None:
        with _unless("message_not_found"):  # gone already
            self.client.chat_delete(channel=channel, ts=ts)

    def _post(self, channel: str, thread_ts: str | None, key: str | None, **content: Any) -> str:
        if key:
            content["metadata"] = {"event_type": POST_KEY_EVENT, "event_payload": {"key": key}}
        try:
            return self._post_once(channel, thread_ts, **content)
        except Exception as e:
            if not key or not answer_lost(e):
                raise
            log.warning("the answer to a post in %s was lost (%s); looking for it", channel, e)
        # Slack may have posted it: look before posting again, and only once more.
        time.sleep(0.2)
        try:
            found = self.find_posted(channel, key, thread_ts=thread_ts)
            if found:
                return found
            return self._post_once(channel, thread_ts, **content)
        except RoomGone:
            raise
        except Exception as e:
            if answer_lost(e) or not isinstance(e, SlackApiError):
                raise AnswerLost(f"{channel}: {key}") from e
            raise

    def _post_once(self, channel: str, thread_ts: str | None, **content: Any) -> str:
        try:
            resp = self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, unfurl_links=False, **content
            )
        except SlackApiError as e:
            if error_code(e) in _ROOM_GONE:
                raise RoomGone(channel, error_code(e)) from e
            raise
        return str(resp["ts"])

    def update(self, channel: str, ts: str, message: Message) -> None:
        self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    def pin(self, channel: str, ts: str) -> None:
        with _unless("already_pinned"):
            self.client.pins_add(channel=channel, timestamp=ts)

    def open_view(self, trigger_id: str, view: View) -> None:
        self.client.views_open(trigger_id=trigger_id, view=view)

    def publish_home(self, user: str, view: View) -> bool:
        """Publish `user`'s App Home tab; False (logged) when Slack refuses."""
        try:
            self.client.views_publish(user_id=user, view=view)
        except SlackApiError as e:
            log.warning("App Home for %s not published: %s", user, error_code(e))
            return False
        return True

    def respond(self, response_url: str, text: str, *, replace: bool = False) -> None:
        """Answer the person who typed a command, visible to them only."""
        WebhookClient(response_url, timeout=10).send(
            text=text, response_type="ephemeral", replace_original=replace
        )


@contextmanager
def _unless(*codes: str) -> Iterator[None]:
    """Slack's refusals with one of `codes` mean the call's end is already reached."""
    try:
        yield
    except SlackApiError as e:
        if error_code(e) not in codes:
            raise


def _failed_invites(data: dict[str, Any]) -> dict[str, str]:
    failed = {}
    for item in data.get("errors") or ():
        if (
            isinstance(item, dict)
            and item.get("user")
            and item.get("error") != "already_in_channel"
        ):
            failed[str(item["user"])] = str(item.get("error"))
    return failed
