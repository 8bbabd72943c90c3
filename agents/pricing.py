"""What the model costs: Anthropic's list prices for the models warroom knows, and the cost of
one call from the token usage the API reports.

Prices are US dollars per million tokens, as Anthropic published them on `PRICES_TAKEN`
(`PRICES_SOURCE`, and each model's overview page). They are list prices on the Claude API:
no Batch API discount, no regional or fast-mode premium, no negotiated rate. A model whose
price was not published is left out rather than guessed; its calls cost "unknown", never $0.
When Anthropic changes a price, change it here and the date with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

PRICES_TAKEN = date(2026, 12, 4)
PRICES_SOURCE = "https://platform.claude.com/docs/en/about-claude/pricing"

# The token counts of a call, as `usage` in the Messages API names them.
USAGE_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens of each kind a call is billed for."""

    input: Decimal
    # Writing the prompt cache for 5 minutes, the lifetime the agent asks for
    # (`cache_control: ephemeral` with no ttl); a 1-hour write costs more.
    cache_write: Decimal
    # Reading it back (a cache hit or refresh).
    cache_read: Decimal
    output: Decimal


def _usd(input: str, cache_write: str, cache_read: str, output: str) -> Price:
    return Price(Decimal(input), Decimal(cache_write), Decimal(cache_read), Decimal(output))


# By model id, as WARROOM_MODEL names it. For every model here a 5-minute cache write is
# 1.25 times the input price and a cache read 0.1 times, as Anthropic's prompt-caching pricing
# says; the prices are written out all the same, because newer models break that rule (some
# read the cache at 0.05 times input or less). Sonnet 4.5 bills prompts over 200,000 tokens
# higher, on its 1M-token context beta only, which warroom does not ask for; its prompts are a
# few thousand tokens.
PRICES: dict[str, Price] = {
    "claude-opus-5": _usd("5", "6.25", "0.50", "25"),
    "claude-opus-4-8": _usd("5", "6.25", "0.50", "25"),
    "claude-opus-4-7": _usd("5", "6.25", "0.50", "25"),
    "claude-opus-4-6": _usd("5", "6.25", "0.50", "25"),
    "claude-opus-4-5": _usd("5", "6.25", "0.50", "25"),
    "claude-sonnet-5": _usd("2", "2.50", "0.20", "10"),
    "claude-sonnet-4-6": _usd("3", "3.75", "0.30", "15"),
    "claude-sonnet-4-5": _usd("3", "3.75", "0.30", "15"),
    "claude-haiku-4-5": _usd("1", "1.25", "0.10", "5"),
}


def price_of(model: str) -> Price | None:
    """The price of `model`, or None when it has none here. A dated snapshot id
    (claude-haiku-4-5-20251001) is priced as the model it is a snapshot of."""
    if model in PRICES:
        return PRICES[model]
    base, _, suffix = model.rpartition("-")
    if len(suffix) == 8 and suffix.isdigit():
        return PRICES.get(base)
    return None


def cost(model: str, usage: Mapping[str, int]) -> Decimal | None:
    """What one call of `model` with `usage` (the token counts, `USAGE_FIELDS`) cost in US
    dollars, exactly; None when the model has no price here."""
    price = price_of(model)
    if price is None:
        return None
    billed = (
        usage.get("input_tokens", 0) * price.input
        + usage.get("cache_creation_input_tokens", 0) * price.cache_write
        + usage.get("cache_read_input_tokens", 0) * price.cache_read
        + usage.get("output_tokens", 0) * price.output
    )
    return billed / MILLION
