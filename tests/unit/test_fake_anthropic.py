"""Tests of loopback/anthropic, driven only through the real ``anthropic`` SDK.

They pin the wire facts the fake copies (event sequence, usage, error classes, retries)
so that a fake which drifts from what the SDK expects fails here, not in agent tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pytest

from loopback.anthropic import FakeAnthropic, approx_tokens, split_deltas

MODEL = "claude-sonnet-5-5"
USER = [{"role": "user", "content": "Draft the customer update."}]
# Long enough to pass the 1024-token minimum for caching (4 characters a token).
LONG_SYSTEM = "You are the VP of Support drafting careful customer updates. " * 80


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key=fake.api_key, base_url=fake.url, max_retries=0, timeout=5
    ) as sdk:
        yield sdk


def _create(client: anthropic.Anthropic, **kwargs: object) -> anthropic.types.Message:
    params: dict[str, object] = {"model": MODEL, "max_tokens": 256, "messages": USER}
    params.update(kwargs)
    return client.messages.create(**params)  # type: ignore[call-overload, no-any-return]


def _stream_text(client: anthropic.Anthropic, **kwargs: object) -> list[str]:
    params: dict[str, object] = {"model": MODEL, "max_tokens": 256, "messages": USER}
    params.update(kwargs)
    with client.messages.stream(**params) as stream:  # type: ignore[arg-type]
        return list(stream.text_stream)


# ---------------------------------------------------------------------- replies


def test_create_returns_a_full_message(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.reply_with("Customers can log in again.")
    message = _create(client, system="Be brief.", metadata={"user_id": "u-1"})

    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [(b.type, b.text) for b in message.content] == [("text", "Customers can log in again.")]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == approx_tokens("Be brief.") + approx_tokens(
        USER[0]["content"]
    )
    assert message.usage.output_tokens == approx_tokens("Customers can log in again.")
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0

    [request] = fake.requests
    assert (request.status, request.stream, request.text) == (200, False, message.content[0].text)
    assert request.system_text() == "Be brief."
    assert request.user_text() == "Draft the customer update."
    # SDK 2.x sends the key as a bearer token and pins the newest API version.
    assert request.headers["authorization"] == f"Bearer {fake.api_key}"
    assert request.headers["anthropic-version"] == "2026-10-21"
    # the server notes the time after its last byte, which the client may already have read
    deadline = time.monotonic() + 2
    while not request.finished and time.monotonic() < deadline:
        time.sleep(0.001)
    assert request.finished >= request.started


def test_default_and_computed_replies(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    timeline = "Timeline:\n• 10:02 declared: login down\n• 10:05 update: rollback\n- 10:09 fixed"
    default = _create(client, messages=[{"role": "user", "content": timeline}])
    assert default.content[0].text == "Draft based on 3 timeline entries."

    fake.respond(lambda body: f"Echo: {body['messages'][-1]['content']}")
    fake.reply_with("queued first")
    assert _create(client).content[0].text == "queued first"
    assert _create(client).content[0].text == "Echo: Draft the customer update."

    # A handler that raises is the test's bug: a 500 here, and kept for the test to see.
    fake.respond(lambda body: body["no such key"])
    with pytest.raises(anthropic.InternalServerError):
        _create(client)
    assert [type(e) for e in fake.handler_errors] == [KeyError]


def test_stream_sends_the_documented_events(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    text = "The incident is resolved and we are monitoring."
    fake.reply_with(text)
    with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=256, messages=USER, stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())

    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    deltas = len(split_deltas(text))
    assert deltas > 1
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data:")]
    # Each event's data carries its own name as "type".
    assert [d["type"] for d in data] == events
    assert data[0]["message"]["content"] == [] and data[0]["message"]["stop_reason"] is None
    assert data[-2]["delta"]["stop_reason"] == "end_turn"
    assert data[-2]["usage"]["output_tokens"] == approx_tokens(text)


def test_stream_helper_gives_text_and_final_message(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    text = "We restored service at 10:09 UTC."
    fake.reply_with(text)
    with client.messages.stream(model=MODEL, max_tokens=256, messages=USER) as stream:
        chunks = list(stream.text_stream)
        final = stream.get_final_message()
    assert chunks == split_deltas(text)
    assert [b.text for b in final.content] == [text]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == approx_tokens(text)
    assert final.usage.input_tokens == approx_tokens(USER[0]["content"])
    [request] = fake.requests
    assert request.stream and request.status == 200 and request.deltas == len(chunks)


def test_a_reply_can_have_several_text_blocks(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fake.reply_with(["Summary first.", "Then the next steps."], ["One.", "Two.", "Three."])
    message = _create(client)
    assert [b.text for b in message.content] == ["Summary first.", "Then the next steps."]
    with client.messages.stream(model=MODEL, max_tokens=256, messages=USER) as stream:
        final = stream.get_final_message()
    assert [b.text for b in final.content] == ["One.", "Two.", "Three."]


def test_stop_reasons(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.stop_reason_next("max_tokens")
    fake.stop_reason_next("max_tokens")
    assert _create(client).stop_reason == "max_tokens"
    with client.messages.stream(model=MODEL, max_tokens=256, messages=USER) as stream:
        assert stream.get_final_message().stop_reason == "max_tokens"
    assert _create(client).stop_reason == "end_turn"  # one-shot

    # A reply longer than max_tokens is cut there, as generation would be.
    fake.reply_with("x" * 100)
    cut = _create(client, max_tokens=5)
    assert (cut.stop_reason, cut.content[0].text, cut.usage.output_tokens) == (
        "max_tokens",
        "x" * 20,
        5,
    )

    fake.reply_with("Update one. END Never sent.")
    stopped = _create(client, stop_sequences=["END"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "END")
    assert stopped.content[0].text == "Update one. "


# ---------------------------------------------------------------------- prompt caching


def test_prompt_cache_is_written_then_read(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    prefix = approx_tokens(LONG_SYSTEM)
    assert prefix >= 1024
    user_tokens = approx_tokens(USER[0]["content"])

    first = _create(client, system=system).usage
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (prefix, 0)
    assert first.input_tokens == user_tokens
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix

    # The same prefix again, streamed this time: read from the cache.
    with client.messages.stream(
        model=MODEL, max_tokens=256, system=system, messages=USER
    ) as stream:
        second = stream.get_final_message().usage
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, prefix)
    assert second.input_tokens == user_tokens

    assert fake.requests[0].cache_controls() == system
    fake.forget_cache()
    assert _create(client, system=system).usage.cache_creation_input_tokens == prefix


def test_the_longest_cached_prefix_is_read_and_the_rest_written(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    # The stable system prompt for an hour, each timeline for the default 5 minutes.
    hour = {"type": "ephemeral", "ttl": "1h"}
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": hour}]

    def asking(timeline: str) -> list[dict[str, object]]:
        cached = {"type": "text", "text": timeline, "cache_control": {"type": "ephemeral"}}
        return [{"role": "user", "content": [cached, {"type": "text", "text": "Go."}]}]

    prefix = approx_tokens(LONG_SYSTEM)
    a, b = "Timeline A. " * 40, "Timeline B. " * 40
    first = _create(client, system=system, messages=asking(a)).usage
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_1h_input_tokens == prefix
    assert first.cache_creation.ephemeral_5m_input_tokens == approx_tokens(a)
    # Same system prompt, another timeline: the system prefix is read, the new part written.
    second = _create(client, system=system, messages=asking(b)).usage
    assert (second.cache_read_input_tokens, second.cache_creation_input_tokens) == (
        prefix,
        approx_tokens(b),
    )
    assert second.input_tokens == approx_tokens("Go.")
    # max_tokens=0 only warms the cache (documented by the SDK): no content.
    warm = _create(client, system=system, messages=asking(b), max_tokens=0)
    assert (warm.content, warm.stop_reason, warm.usage.output_tokens) == ([], "max_tokens", 0)
    assert warm.usage.cache_read_input_tokens == prefix + approx_tokens(b)
    # A 1h breakpoint after a 5m one is refused.
    late_hour = [{"type": "text", "text": "Go.", "cache_control": hour}]
    with pytest.raises(anthropic.BadRequestError, match="ttl"):
        _create(
            client, system=system, messages=[*asking(a), {"role": "user", "content": late_hour}]
        )


def test_short_prefixes_are_not_cached(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": "Short.", "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        usage = _create(client, system=system).usage
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)


# ---------------------------------------------------------------------- errors


def test_a_wrong_key_is_401(fake: FakeAnthropic) -> None:
    with (
        anthropic.Anthropic(api_key="sk-wrong", base_url=fake.url, max_retries=0) as sdk,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        _create(sdk)
    assert caught.value.status_code == 401
    assert caught.value.type == "authentication_error"
    assert caught.value.request_id == fake.requests[0].request_id


def test_x_api_key_header_is_accepted(fake: FakeAnthropic) -> None:
    # The API's documented header, sent instead of the SDK's bearer token.
    headers = {"x-api-key": fake.api_key, "Authorization": anthropic.omit}
    with anthropic.Anthropic(
        api_key="unused", base_url=fake.url, max_retries=0, default_headers=headers
    ) as sdk:
        assert _create(sdk).content
    assert fake.requests[0].headers["x-api-key"] == fake.api_key
    assert "authorization" not in fake.requests[0].headers


def test_invalid_bodies_are_400_naming_the_field(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    bad: list[tuple[dict[str, object], str]] = [
        ({"messages": []}, "messages"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages.0"),
        ({"system": [{"type": "text", "text": "x", "cache_control": {"type": "x"}}]}, "system.0"),
        ({"extra_body": {"temperature": 0.2}}, "temperature"),  # refused by 2026-10-21
        ({"extra_body": {"frobnicate": True}}, "frobnicate"),
    ]
    for kwargs, field in bad:
        with pytest.raises(anthropic.BadRequestError) as caught:
            _create(client, **kwargs)
        assert caught.value.type == "invalid_request_error"
        assert caught.value.api_message is not None
        assert caught.value.api_message.startswith(field), caught.value.api_message
    assert [r.status for r in fake.requests] == [400] * len(bad)
    # Consecutive user turns are combined by the API, not refused.
    assert _create(client, messages=[*USER, *USER]).content


def test_api_versions(fake: FakeAnthropic) -> None:
    older = {"anthropic-version": "2023-06-01"}
    with anthropic.Anthropic(
        api_key=fake.api_key, base_url=fake.url, max_retries=0, default_headers=older
    ) as sdk:
        # The 2023-06-01 API still takes sampling parameters.
        assert _create(sdk, extra_body={"temperature": 0.2}).content
    missing = {"anthropic-version": anthropic.omit}
    with (
        anthropic.Anthropic(
            api_key=fake.api_key, base_url=fake.url, max_retries=0, default_headers=missing
        ) as sdk,
        pytest.raises(anthropic.BadRequestError, match="anthropic-version"),
    ):
        _create(sdk)


def test_unknown_paths_are_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.models.list()
    assert caught.value.type == "not_found_error"


ERROR_CLASSES = [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (529, anthropic.OverloadedError, "overloaded_error"),
]


@pytest.mark.parametrize(("status", "error_class", "error_type"), ERROR_CLASSES)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_error_statuses_raise_the_sdk_classes(
    fake: FakeAnthropic,
    client: anthropic.Anthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
    stream: bool,
) -> None:
    fake.fail_next(status, retry_after=7)
    with pytest.raises(error_class) as caught:
        _stream_text(client) if stream else _create(client)
    error = caught.value
    # 500 is the base InternalServerError; 529 is its OverloadedError subclass.
    assert type(error) is error_class
    assert (error.status_code, error.type) == (status, error_type)
    assert error.body == {
        "type": "error",
        "error": {"type": error_type, "message": error.api_message},
        "request_id": error.request_id,
    }
    assert error.response.headers["retry-after"] == "7"
    assert fake.requests[-1].status == status
    # The fault was one-shot and did not use up the reply.
    fake.reply_with("fine")
    assert (_stream_text(client) if stream else [_create(client).content[0].text]) == ["fine"]


def test_an_error_event_mid_stream(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.fail_next(529, mid_stream=True)
    fake.reply_with("Service is degraded while we investigate.")
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model=MODEL, max_tokens=256, messages=USER) as stream,
    ):
        received.extend(stream.text_stream)
    # After a 200 the SDK can only build the base class, with the 200's status code.
    assert type(caught.value) is anthropic.APIStatusError
    assert (caught.value.status_code, caught.value.type) == (200, "overloaded_error")
    assert received == split_deltas("Service is degraded while we investigate.")[:2]
    assert fake.requests[0].error_type == "overloaded_error"


def test_sdk_retries_recover_from_an_overload(fake: FakeAnthropic) -> None:
    fake.fail_next(529, retry_after=1.2)
    fake.reply_with("after the retry")
    with anthropic.Anthropic(
        api_key=fake.api_key, base_url=fake.url, max_retries=2, timeout=5
    ) as sdk:
        message = _create(sdk)
    assert message.content[0].text == "after the retry"
    assert [r.status for r in fake.requests] == [529, 200]
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]
    # retry-after replaces the SDK's own backoff (at most 0.5 s before a first retry): a lower
    # bound only, which a busy machine can never break.
    first, second = fake.requests
    assert second.started - first.finished >= 1.2


def test_retry_after_is_honoured_and_retries_run_out(fake: FakeAnthropic) -> None:
    fake.fail_next(429, times=2, retry_after=0.2)
    with (
        anthropic.Anthropic(
            api_key=fake.api_key, base_url=fake.url, max_retries=1, timeout=5
        ) as sdk,
        pytest.raises(anthropic.RateLimitError),
    ):
        _create(sdk)
    first, second = fake.requests
    assert second.started - first.finished >= 0.2


MALFORMED = [
    # (kind, stream, what the SDK raises; None: it returns a Message with content None)
    ("truncated", False, json.JSONDecodeError),
    ("truncated", True, json.JSONDecodeError),
    ("missing_content", False, None),
    ("missing_content", True, AttributeError),
    ("disconnect", False, anthropic.APIConnectionError),
    ("disconnect", True, anthropic.APIConnectionError),
]


@pytest.mark.parametrize(("kind", "stream", "raised"), MALFORMED)
def test_malformed_replies(
    fake: FakeAnthropic,
    client: anthropic.Anthropic,
    kind: str,
    stream: bool,
    raised: type[Exception] | None,
) -> None:
    fake.malformed_next(kind=kind)  # type: ignore[arg-type]
    fake.reply_with("the good reply")
    if raised is None:
        # The SDK does not validate responses by default: the hole is left for the caller.
        assert _create(client).content is None
    else:
        with pytest.raises(raised):
            _stream_text(client) if stream else _create(client)
    assert fake.requests[0].malformed == kind
    assert _create(client).content[0].text == "the good reply"


# ---------------------------------------------------------------------- timing


def test_hang_next_makes_the_client_time_out(fake: FakeAnthropic) -> None:
    # An hour: the client's timeout, not the end of the hang, is what stops the call.
    fake.hang_next(3600)
    fake.reply_with("late")
    with anthropic.Anthropic(
        api_key=fake.api_key, base_url=fake.url, max_retries=0, timeout=0.5
    ) as sdk:
        started = time.monotonic()
        with pytest.raises(anthropic.APITimeoutError):
            _create(sdk)
        assert time.monotonic() - started > 0.45
        # The fake notices the client left and keeps the reply for the next call.
        deadline = time.monotonic() + 30
        while fake.requests[0].status != 499 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.requests[0].status == 499 and fake.requests[0].disconnected
        assert _create(sdk).content[0].text == "late"


def test_latency_and_token_delay(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.latency, fake.token_delay = 0.3, 0.04
    text = "one two three four five six seven eight nine ten eleven"
    deltas = len(split_deltas(text))
    fake.reply_with(text, text)

    started = time.monotonic()
    stamps: list[float] = []
    with client.messages.stream(model=MODEL, max_tokens=256, messages=USER) as stream:
        for _ in stream.text_stream:
            stamps.append(time.monotonic() - started)
    generation = (deltas - 1) * 0.04
    # The first text comes after the latency, and the text is spread over the generation: a
    # fake that waited for all of it would deliver every delta at once. Lower bounds only: a
    # busy machine can make anything later, never earlier.
    assert stamps[0] >= 0.3
    assert len(stamps) == deltas
    assert stamps[-1] - stamps[0] >= generation * 0.9

    # A non-streaming call waits for the whole generation before it answers.
    started = time.monotonic()
    _create(client)
    assert time.monotonic() - started >= 0.3 + generation


def test_concurrent_requests_overlap(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.latency = 0.3
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: _create(client).content[0].text, range(16)))
    assert len(results) == 16
    # Served at once, not one after another: some request arrived before another finished.
    requests = fake.requests
    assert len(requests) == 16
    first_done = min(r.finished for r in requests)
    assert sum(r.started < first_done for r in requests) >= 2


def test_stop_ends_hangs_and_keep_alive_connections() -> None:
    fake = FakeAnthropic().start()
    sdk = anthropic.Anthropic(api_key=fake.api_key, base_url=fake.url, max_retries=0, timeout=5)
    try:
        _create(sdk)  # leaves a keep-alive connection in the SDK's pool
        fake.hang_next(3600)  # stop() returning at all is stop() not waiting it out
        failures: list[BaseException] = []

        def hung_call() -> None:
            try:
                _create(sdk)
            except anthropic.APIError as exc:
                failures.append(exc)

        caller = threading.Thread(target=hung_call)
        caller.start()
        deadline = time.monotonic() + 30
        while len(fake.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        fake.stop()
        caller.join(timeout=30)
        assert not caller.is_alive()
        # The hung request was dropped, not answered.
        assert [type(f) for f in failures] == [anthropic.APIConnectionError]
        with pytest.raises(anthropic.APIConnectionError):
            _create(sdk)
    finally:
        sdk.close()
        fake.stop()
