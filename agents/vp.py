"""The VP agent: one Anthropic client, streaming drafts, and the offline drafter as fallback.

Every draft arrives: from the model when it answers in time, otherwise from the templates in
`agents.offline`, labelled as such, within `timeout` seconds of the request. The war room
never waits longer than that on the model.
"""

from __future__ import annotations

import logging
import re
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

from agents import offline, prompts
from agents.grounding import Grounding

log = logging.getLogger(__name__)

OnText = Callable[[str], None]

# What each kind of draft asks the model, and what the offline drafter writes instead.
_MESSAGES: dict[str, Callable[..., list[dict]]] = {
    "customer_update": prompts.customer_update_messages,
    "review": prompts.review_messages,
    "answer": prompts.answer_messages,
}
_OFFLINE: dict[str, Callable[..., str]] = {
    "customer_update": offline.offline_customer_update,
    "review": offline.offline_review,
    "answer": offline.offline_answer,
}


def newest_opus() -> str:
    """The newest Opus model id the installed SDK knows (its `Model` literal)."""
    ids = [a for arg in typing.get_args(Model) for a in typing.get_args(arg) or (arg,)]
    best: tuple[tuple[int, ...], str] | None = None
    for model_id in ids:
        if not isinstance(model_id, str):
            continue
        m = re.fullmatch(r"claude-opus-(\d+)(?:-(\d{1,2}))?(?:-(\d{8}))?", model_id)
        if not m:
            continue
        # version first; an undated alias ranks above its dated snapshot
        key = (int(m[1]), int(m[2] or 0), 0 if m[3] else 1, int(m[3] or 0))
        if best is None or key > best[0]:
            best = (key, model_id)
    if best is None:
        raise RuntimeError("the installed anthropic SDK lists no Opus model; set WARROOM_MODEL")
    return best[1]


@dataclass(frozen=True)
class Reply:
    text: str
    offline: bool = False
    offline_reason: str = ""
    truncated: bool = False
    usage: dict[str, int] = field(default_factory=dict)


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
    ) -> None:
        self.model = model or newest_opus()
        self.timeout = timeout
        self.persona = persona or prompts.load_persona()
        # Built once, with every limit explicit: the SDK's default timeout is 10 minutes.
        self.client = (
            anthropic.Anthropic(
                api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
            )
            if api_key
            else None
        )
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="model")

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

    # -- machinery -------------------------------------------------------------------------
    def _draft(self, kind: str, g: Grounding, on_text: OnText | None, *asked: str) -> Reply:
        """The model's draft of `kind`, or the offline drafter's (`asked`: the question)."""
        messages = _MESSAGES[kind](g, *asked)
        fallback = partial(_OFFLINE[kind], g, *asked)
        max_tokens = prompts.MAX_TOKENS[kind]
        if self.client is None:
            return Reply(fallback(), offline=True, offline_reason="no API key configured")
        started = time.monotonic()
        live = threading.Event()  # cleared when we stop waiting: late text must not show
        live.set()

        def forward(text: str) -> None:
            if live.is_set() and on_text is not None:
                on_text(text)

        future = self._pool.submit(self._stream, messages, max_tokens, forward, started)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            live.clear()
            reason = f"no complete answer within {self.timeout:g} s"
        except Exception as e:
            # The agent's boundary: the SDK's APIError family (timeouts, 429, 5xx, 529
            # overloaded), and what a garbled 200 leaks past it (JSON errors from a truncated
            # body, AttributeError from a message without content, the HTTP library's protocol
            # errors from a dropped stream). Whatever it is, the offline drafter steps in.
            live.clear()
            reason = _describe(e)
            if not isinstance(e, anthropic.APIError | MalformedReply):
                log.warning("unexpected failure from the model call", exc_info=e)
        log.warning("model unavailable (%s); drafting offline", reason)
        return Reply(fallback(), offline=True, offline_reason=reason)

    def _stream(
        self, messages: list[dict], max_tokens: int, forward: OnText, started: float
    ) -> Reply:
        assert self.client is not None
        text = ""
        with self.client.messages.stream(
            model=self.model,
            max_tokens=max_tokens,
            system=prompts.system_blocks(self.persona),
            messages=messages,
        ) as stream:
            for chunk in stream.text_stream:
                text += chunk
                forward(text)
                if time.monotonic() - started > self.timeout:
                    raise MalformedReply("too slow")
            final = stream.get_final_message()
        joined = "".join(b.text for b in final.content if getattr(b, "type", "") == "text")
        if not joined.strip():
            raise MalformedReply("the model's reply had no text")
        usage = final.usage
        return Reply(
            joined.strip(),
            truncated=final.stop_reason == "max_tokens",
            usage={
                "input_tokens": usage.input_tokens or 0,
                "output_tokens": usage.output_tokens or 0,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
                "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
            },
        )


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
