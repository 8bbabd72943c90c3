"""The model the agent calls: pinned in the code and still listed by the installed SDK, the
cached prompt prefix long enough for that model to cache it, and the usage of every call
logged and returned."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from agents import prompts
from agents.vp import DEFAULT_MODEL, MIN_CACHEABLE_TOKENS, VPAgent, sdk_models
from loopback.anthropic import FakeAnthropic, approx_tokens
from tests.agent_records import grounding
from tests.rooms import wait_until


def test_the_default_model_is_pinned_and_the_sdk_lists_it() -> None:
    assert DEFAULT_MODEL == "claude-opus-4-8"
    assert DEFAULT_MODEL in sdk_models()
    # not whatever the SDK lists newest: an SDK upgrade must not change the model silently
    assert VPAgent(api_key=None).model == DEFAULT_MODEL
    assert any(m > DEFAULT_MODEL for m in sdk_models() if m.startswith("claude-opus-"))


def test_warroom_model_overrides_the_default() -> None:
    assert VPAgent(api_key=None, model="claude-sonnet-5").model == "claude-sonnet-5"


def test_the_table_of_cache_minimums_knows_the_pinned_model() -> None:
    # The table is data from Anthropic's documentation, kept for models the SDK may have
    # dropped from its list since (its Model literal changes with every release); only the
    # pinned model must be in both.
    assert DEFAULT_MODEL in MIN_CACHEABLE_TOKENS
    assert all(m.startswith("claude-") and n > 0 for m, n in MIN_CACHEABLE_TOKENS.items())


def test_the_cached_prefix_is_long_enough_for_the_pinned_model() -> None:
    prefix = prompts.load_persona() + prompts.load_examples()
    minimum = MIN_CACHEABLE_TOKENS[DEFAULT_MODEL]
    # The fake's count (4 characters a token) is rough: demand twice the minimum.
    assert approx_tokens(prefix) >= 2 * minimum
    # The persona alone was about 1,700 tokens: under some models' minimum of 4,096.
    assert approx_tokens(prefix) >= 4096


@pytest.fixture
def model() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(min_cache_tokens=MIN_CACHEABLE_TOKENS[DEFAULT_MODEL]) as fake:
        yield fake


def test_the_prefix_is_cached_and_usage_is_logged(
    model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    agent = VPAgent(api_key=model.api_key, base_url=model.url, timeout=5, max_retries=0)
    try:
        caplog.set_level(logging.INFO, logger="agents.vp")
        first = agent.customer_update(grounding())
        second = agent.answer(grounding(), "Who is the IC?")
    finally:
        agent.close()
    (request, _) = model.requests
    system = request.body["system"]
    assert [b.get("cache_control") for b in system] == [None, {"type": "ephemeral"}]
    assert request.body["model"] == DEFAULT_MODEL
    written = first.usage["cache_creation_input_tokens"]
    assert written >= MIN_CACHEABLE_TOKENS[DEFAULT_MODEL]
    assert second.usage["cache_read_input_tokens"] == written
    assert second.usage["cache_creation_input_tokens"] == 0
    assert set(second.usage) == {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    }
    lines = [r.getMessage() for r in caplog.records if "tokens" in r.getMessage()]
    assert len(lines) == 2
    assert lines[1].startswith(
        f"escalation esc-20240506-zorblax-industries: answer by {DEFAULT_MODEL}: input "
    )
    assert f"cache read {written}, cache write 0" in lines[1]


def test_a_prefix_below_the_minimum_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    agent = VPAgent(api_key="sk-test", model="claude-opus-4-6", persona="Short.", examples="")
    agent.close()
    assert "below claude-opus-4-6's minimum cacheable length (4096)" in caplog.text


def test_the_client_is_built_once_with_explicit_limits() -> None:
    agent = VPAgent(api_key="sk-test", base_url="http://127.0.0.1:9", timeout=12, max_retries=1)
    try:
        assert agent.client is not None
        assert agent.client.timeout == 12
        # Retries are the agent's own, within the call's deadline; the SDK's would outlive it.
        assert agent.client.max_retries == 0 and agent.max_retries == 1
        assert str(agent.client.base_url).startswith("http://127.0.0.1:9")
    finally:
        agent.close()
    assert VPAgent(api_key=None).client is None


def test_a_hung_model_call_is_cancelled_at_its_deadline_and_not_retried_after_it(
    model: FakeAnthropic,
) -> None:
    """Defect: a timed-out call went on waiting on its thread, and the SDK then retried it,
    long after the war room had been given the offline draft."""
    # The model would answer in an hour: the call ends only if the agent hangs up.
    model.hang_next(3600)
    agent = VPAgent(api_key=model.api_key, base_url=model.url, timeout=1, max_retries=1)
    try:
        reply = agent.customer_update(grounding())
        assert reply.offline and "within 1 s" in reply.offline_reason
        (hung,) = model.requests
        wait_until(lambda: hung.finished, 30, "the hung call to end")
        assert hung.disconnected and hung.status == 499  # the agent hung up: nothing was sent
        time.sleep(1.5)
        assert len(model.requests) == 1  # no retry once the deadline has passed
    finally:
        agent.close()


def test_an_overloaded_model_is_tried_again_within_the_deadline(model: FakeAnthropic) -> None:
    model.fail_next(529)
    model.reply_with("Dear Dana,\\n\\nWe are on it. [-]\\n\\nVictoria Chen, VP Support")
    agent = VPAgent(api_key=model.api_key, base_url=model.url, timeout=5, max_retries=1)
    try:
        reply = agent.customer_update(grounding())
        assert not reply.offline and "We are on it." in reply.text
        assert [r.status for r in model.requests] == [529, 200]
    finally:
        agent.close()
