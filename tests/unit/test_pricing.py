"""What the model costs: a price for the pinned model and every model the agent knows, the
cache prices in the proportions Anthropic publishes, the exact cost of a call from its usage,
and that cost in the agent's log line."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from agents import pricing
from agents.vp import DEFAULT_MODEL, MIN_CACHEABLE_TOKENS, VPAgent
from loopback.anthropic import FakeAnthropic
from tests.agent_records import grounding


def test_the_pinned_model_and_every_model_with_a_cache_minimum_have_a_price() -> None:
    assert pricing.price_of(DEFAULT_MODEL) is not None
    assert set(MIN_CACHEABLE_TOKENS) <= set(pricing.PRICES)


@pytest.mark.parametrize("model", sorted(pricing.PRICES))
def test_cache_prices_are_in_the_published_proportions(model: str) -> None:
    """A 5-minute cache write is 1.25 times input and a read 0.1 times, for these models."""
    price = pricing.PRICES[model]
    assert price.cache_write == price.input * Decimal("1.25")
    assert price.cache_read == price.input * Decimal("0.1")
    assert price.output > price.input > 0


def test_the_pinned_models_list_price() -> None:
    price = pricing.PRICES["claude-opus-4-8"]
    assert (price.input, price.cache_write, price.cache_read, price.output) == (
        Decimal("5"),
        Decimal("6.25"),
        Decimal("0.50"),
        Decimal("25"),
    )


def test_the_cost_of_a_call_is_each_kind_of_token_at_its_price() -> None:
    usage = {
        "input_tokens": 1_234,
        "cache_creation_input_tokens": 5_000,
        "cache_read_input_tokens": 20_000,
        "output_tokens": 321,
    }
    # (1,234 x $3 + 5,000 x $3.75 + 20,000 x $0.30 + 321 x $15) per million tokens:
    # $3,702 + $18,750 + $6,000 + $4,815 = $33,267 per million calls.
    assert pricing.cost("claude-sonnet-4-6", usage) == Decimal("0.033267")
    assert pricing.cost("claude-sonnet-4-6", {}) == 0


def test_a_dated_snapshot_is_priced_as_its_model_and_an_unknown_model_has_no_price() -> None:
    assert pricing.price_of("claude-haiku-4-5-20251001") == pricing.PRICES["claude-haiku-4-5"]
    assert pricing.price_of("claude-unknown-9") is None
    assert pricing.price_of("claude-haiku-4-5-2025") is None
    assert pricing.cost("claude-unknown-9", {"output_tokens": 10}) is None


def test_the_usage_log_line_says_what_the_call_cost(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agents.vp")
    with FakeAnthropic() as model:
        agent = VPAgent(api_key=model.api_key, base_url=model.url, timeout=5, max_retries=0)
        try:
            reply = agent.customer_update(grounding())
        finally:
            agent.close()
    expected = pricing.cost(DEFAULT_MODEL, reply.usage)
    assert expected is not None and expected > 0
    (line,) = [r.getMessage() for r in caplog.records if "tokens" in r.getMessage()]
    assert line.endswith(f"; ${expected:.4f} at list prices")


def test_a_model_with_no_price_is_logged_as_such(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agents.vp")
    with FakeAnthropic() as model:
        agent = VPAgent(
            api_key=model.api_key, base_url=model.url, model="claude-unknown-9", timeout=5
        )
        try:
            agent.answer(grounding(), "Who is the IC?")
        finally:
            agent.close()
    (line,) = [r.getMessage() for r in caplog.records if "tokens" in r.getMessage()]
    assert line.endswith("; no price known")
