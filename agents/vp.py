"""The VP agent: one Anthropic client, streaming drafts, the checks every draft gets, and the
offline drafter as fallback.

Every draft arrives: from the model when it answers in time, otherwise from the templates in
`agents.offline` and `agents.offline_review`, labelled as such, within `timeout` seconds of
the request. The war room never waits longer than that on the model, and no exception leaves
the agent. A model draft's citation tags are checked and stripped (`agents.citations`); every
draft is checked against its escalation (`agents.audit`) and the findings travel on the
`Reply` with the sentences that have no support and the call's token usage.
"""

from __future__ import annotations

import logging
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import partial

import anthropic
from anthropic.types import Model

from agents import audit, citations, offline, offline_review, pricing, prompts
from agents.citations import Claim
from agents.grounding import Grounding

log = logging.getLogger(__name__)

OnText = Callable[[str], None]

# The model drafts are written with unless WARROOM_MODEL says otherwise: pinned here, so an
# upgrade of the SDK never changes it silently (tests/unit/test_vp_model.py checks that the
# installed SDK still lists it). Opus 4.8 answers without extended thinking unless asked, so
# the output budgets below are all letter, and its minimum cacheable prompt is 1,024 tokens,
# which the persona and its examples clear several times over. (Opus 5 and later think by
# default, which spends the output budget and the 30 s deadline on reasoning.)
DEFAULT_MODEL = "claude-opus-4-8"

# The shortest prompt prefix each model caches, in tokens, from Anthropic's prompt-caching
# documentation and model pages; below it a cache_control marker is silently ignored. Where
# published figures disagree (Opus 4.7, Sonnet 4.6) the higher one is kept: the table only
# decides whether to warn.
MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-opus-5": 512,
    "claude-opus-4-8": 1024,
    "claude-opus-4-7": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-sonnet-5": 1024,
    "claude-sonnet-4-6": 2048,
    "claude-sonnet-4-5": 1024,
    "claude-haiku-4-5": 4096,
}
# About four characters a token for English prose: good enough to know a prompt is well above
# or well below a minimum, which is all it is used for.
CHARS_PER_TOKEN = 4

# What each kind of draft asks the model, and what the offline drafter writes instead.
_MESSAGES: dict[str, Callable[..., list[dict]]] = {
    "customer_update": prompts.customer_update_messages,
    "review": prompts.review_messages,
    "answer": prompts.answer_messages,
}
_OFFLINE: dict[str, Callable[..., str]] = {
    "customer_update": offline.offline_customer_update,
    "review": offline_review.offline_review,
    "answer": offline.offline_answer,
}


def sdk_models() -> list[str]:
    """The model ids the installed SDK lists (its `Model` literal)."""
    ids = [a for arg in typing.get_args(Model) for a in typing.get_args(arg) or (arg,)]
    return [i for i in ids if isinstance(i, str)]


def approx_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Reply:
    text: str
    offline: bool = False
    offline_reason: str = ""
    truncated: bool = False
    # input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""  # the model that wrote it ("" offline)
    # Each sentence with the record entries it cites (model drafts only).
    claims: tuple[Claim, ...] = ()
    # Sentences with no valid citation: the approver should see which.
    unsupported: tuple[str, ...] = ()
    # What to look at before approving (leaks, other customers, internal ids, unconfirmed
    # causes, promised times, time zone, signature, placeholders, flag terms, ...).
    findings: tuple[str, ...] = ()


# What the API answers when trying again may work: rate limited, overloaded, its own failures.
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class _Call:
    """One model call (what it sends, where its text goes, when it began), which the caller
    can cancel at its deadline: its stream is closed, which ends the wait of the thread
    reading it, and no retry starts after it."""

    def __init__(
        self, messages: list[dict], max_tokens: int, forward: OnText, started_at: float
    ) -> None:
        self.messages = messages
        self.max_tokens = max_tokens
        self.forward = forward
        self.started_at = started_at
        self.cancelled = threading.Event()
        self._stream: typing.Any = None
        self._lock = threading.Lock()

    def started(self, stream: typing.Any) -> None:
        with self._lock:
            self._stream = stream
            cancelled = self.cancelled.is_set()
        if cancelled:
            stream.close()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception as e:  # closing a connection another thread reads: best effort
                log.debug("closing a cancelled model stream: %r", e)


class MalformedReply(Exception):
    """The model answered 200 but with nothing usable in it."""


class VPAgent:
    def __init__(
        self,
        *,
        api_key: str | None,
        model: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 1,
        persona: str | None = None,
        examples: str | None = None,
        concurrency: int = 8,
    ) -> None:
        self.model = model or DEFAULT_MODEL
        self.timeout = timeout
        self.persona = persona or prompts.load_persona()
        self.examples = prompts.load_examples() if examples is None else examples
        self.system = prompts.system_blocks(self.persona, self.examples)
        # Built once, with every limit explicit: the SDK's default timeout is 10 minutes. The
        # agent retries by itself (`_stream`), and only while the call's deadline allows: the
        # SDK's own retry would start a second wait after the deadline has passed.
        self.max_retries = max_retries
        self.client = (
            anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
            if api_key
            else None
        )
        # The calls themselves, each waited for with a deadline by the thread that asked.
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="model")
        minimum = MIN_CACHEABLE_TOKENS.get(self.model)
        prefix = approx_tokens(self.persona + self.examples)
        if self.client is not None and minimum and prefix < minimum:
            log.warning(
                "the cached system prompt (about %d tokens) is below %s's minimum cacheable "
                "length (%d): prompt caching will do nothing",
                prefix,
                self.model,
                minimum,
            )

    @property
    def online(self) -> bool:
        return self.client is not None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.client is not None:
            self.client.close()

    # -- the three kinds of draft --------------------------------------------------------
    def customer_update(self, g: Grounding, on_text: OnText | None = None) -> Reply:
        return self._draft("customer_update", g, on_text)

    def review(self, g: Grounding, on_text: OnText | None = None) -> Reply:
        return self._draft("review", g, on_text)

    def answer(self, g: Grounding, question: str, on_text: OnText | None = None) -> Reply:
        return self._draft("answer", g, on_text, question)

    def offline(self, kind: str, g: Grounding, reason: str, *asked: str) -> Reply:
        """The offline drafter's draft of `kind`, labelled with `reason` (no model call)."""
        return self._offline(kind, g, asked, reason)

    # -- machinery -------------------------------------------------------------------------
    def _draft(self, kind: str, g: Grounding, on_text: OnText | None, *asked: str) -> Reply:
        """The model's draft of `kind`, or the offline drafter's (`asked`: the question)."""
        if self.client is None:
            return self._offline(kind, g, asked, "no API key configured")
        try:
            messages = _MESSAGES[kind](g, *asked)
        except Exception as e:
            # A record the prompt cannot be built from is a bug to fix, not a reason to leave
            # the war room without a draft.
            log.error("escalation %s: building the %s prompt failed", g.escalation_id, kind,
                      exc_info=e)  # fmt: skip
            return self._offline(kind, g, asked, "the request could not be built")
        max_tokens = prompts.MAX_TOKENS[kind]
        started = time.monotonic()
        live = threading.Event()  # cleared when we stop waiting: late text must not show
        live.set()

        def forward(text: str) -> None:
            if live.is_set() and on_text is not None:
                on_text(citations.strip_streaming(text))

        call = _Call(messages, max_tokens, forward, started)
        future = self._pool.submit(self._stream, call)
        try:
            text, truncated, usage = future.result(timeout=self.timeout)
        except FutureTimeout:
            live.clear()
            call.cancel()  # the connection is closed: no model thread goes on waiting for it
            reason = f"no complete answer within {self.timeout:g} s"
        except Exception as e:
            # The agent's boundary: the SDK's APIError family (timeouts, 429, 5xx, 529
            # overloaded), and what a garbled 200 leaks past it (JSON errors from a truncated
            # body, AttributeError from a message without content, the HTTP library's protocol
            # errors from a dropped stream). Whatever it is, the offline drafter steps in.
            live.clear()
            # The SDK's own read timeout is the same deadline (`left`): whichever of the two
            # notices it first, the war room is told the same thing.
            if isinstance(e, anthropic.APITimeoutError):
                call.cancel()
                reason = f"no complete answer within {self.timeout:g} s"
            else:
                reason = _describe(e)
            if not isinstance(e, anthropic.APIError | MalformedReply):
                log.warning("escalation %s: unexpected failure from the model call",
                            g.escalation_id, exc_info=e)  # fmt: skip
        else:
            self._log_usage(g, kind, usage)
            return self._checked(kind, g, text, truncated=truncated, usage=usage)
        log.warning("escalation %s: model unavailable (%s); drafting offline",
                    g.escalation_id, reason)  # fmt: skip
        return self._offline(kind, g, asked, reason)

    def _stream(self, call: _Call) -> tuple[str, bool, dict[str, int]]:
        for attempt in range(self.max_retries + 1):
            left = self.timeout - (time.monotonic() - call.started_at)
            if call.cancelled.is_set() or left <= 0:  # its deadline passed meanwhile
                raise MalformedReply("cancelled at its deadline")
            try:
                return self._stream_once(call, left)
            except (anthropic.APIConnectionError, anthropic.APIStatusError) as e:
                retryable = isinstance(e, anthropic.APIConnectionError) or (
                    e.status_code in _RETRYABLE_STATUS
                )
                if (
                    not retryable
                    or attempt == self.max_retries
                    or isinstance(e, anthropic.APITimeoutError)
                ):
                    raise
                time.sleep(min(0.5, max(left / 4, 0)))
        raise AssertionError("unreachable")

    def _stream_once(self, call: _Call, left: float) -> tuple[str, bool, dict[str, int]]:
        assert self.client is not None
        text = ""
        with self.client.messages.stream(
            model=self.model,
            max_tokens=call.max_tokens,
            system=self.system,
            messages=call.messages,
            timeout=left,
        ) as stream:
            call.started(stream)
            for chunk in stream.text_stream:
                text += chunk
                call.forward(text)
                if call.cancelled.is_set() or time.monotonic() - call.started_at > self.timeout:
                    raise MalformedReply("too slow")
            final = stream.get_final_message()
        joined = "".join(b.text for b in final.content if getattr(b, "type", "") == "text")
        if not joined.strip():
            raise MalformedReply("the model's reply had no text")
        usage = final.usage
        return (
            joined.strip(),
            final.stop_reason == "max_tokens",
            {
                "input_tokens": usage.input_tokens or 0,
                "output_tokens": usage.output_tokens or 0,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
                "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
            },
        )

    def _log_usage(self, g: Grounding, kind: str, usage: dict[str, int]) -> None:
        cost = pricing.cost(self.model, usage)
        log.info(
            "escalation %s: %s by %s: input %d, cache read %d, cache write %d, output %d "
            "tokens; %s",
            g.escalation_id,
            kind,
            self.model,
            usage["input_tokens"],
            usage["cache_read_input_tokens"],
            usage["cache_creation_input_tokens"],
            usage["output_tokens"],
            "no price known" if cost is None else f"${cost:.4f} at list prices",
        )

    def _checked(
        self, kind: str, g: Grounding, raw: str, *, truncated: bool, usage: dict[str, int]
    ) -> Reply:
        """The model's draft as people see it: tags checked and stripped, then audited."""
        try:
            backing = g.letter_ids() if kind == "customer_update" else None
            cited = citations.read(raw, g.record_ids(), backing)
            findings = [*check_draft(kind, g, cited.text)]
            findings += [f"citation: cites {i}, which is not in the record" for i in cited.unknown]
            return Reply(
                cited.text,
                truncated=truncated,
                usage=usage,
                model=self.model,
                claims=cited.claims,
                unsupported=cited.unsupported,
                findings=tuple(findings),
            )
        except Exception as e:
            log.error("escalation %s: checking the %s draft failed", g.escalation_id, kind,
                      exc_info=e)  # fmt: skip
            return Reply(
                citations.strip_tags(raw),
                truncated=truncated,
                usage=usage,
                model=self.model,
                findings=("checks: the draft could not be checked; read it with care",),
            )

    def _offline(self, kind: str, g: Grounding, asked: tuple[str, ...], reason: str) -> Reply:
        try:
            text = partial(_OFFLINE[kind], g, *asked)()
            findings = tuple(check_draft(kind, g, text))
        except Exception as e:
            log.error("escalation %s: the offline %s draft failed", g.escalation_id, kind,
                      exc_info=e)  # fmt: skip
            text = (
                "The offline drafter could not write this from the record; write it by hand "
                "from the war room's facts."
            )
            findings = ("checks: the offline drafter failed on this record",)
        return Reply(text, offline=True, offline_reason=reason, findings=findings)


def check_draft(kind: str, g: Grounding, text: str) -> list[str]:
    """The findings on a draft of `kind` as people see it: what the agent returns with every
    draft, and what an edited text should be checked for again before it is approved."""
    if kind == "customer_update":
        return [str(f) for f in audit.letter(g, text)]
    if kind == "review":
        return [str(f) for f in audit.review(g, text)]
    return []


def _describe(e: BaseException) -> str:
    if isinstance(e, anthropic.APITimeoutError):
        return "the model timed out"
    if isinstance(e, anthropic.APIStatusError):
        kinds = {429: "rate limited", 529: "overloaded"}
        return f"the model answered {e.status_code} ({kinds.get(e.status_code, 'error')})"
    if isinstance(e, anthropic.APIConnectionError):
        return "the model could not be reached"
    if isinstance(e, MalformedReply):
        return str(e)
    return "the model's reply could not be read"
