"""The VP agent's drafts: how soon text shows in Slack, how often the message is updated,
how much of each prompt is served from the prompt cache, and (--cost) what the model calls of
one escalation cost.

Drives the production app against the loopback Slack and the loopback Messages API (with a
configurable model latency and streaming pace) and a real Redis (REDIS_URL, default
127.0.0.1:6379, under a throwaway key prefix). The cost comes from the usage the bot logged in
Redis, priced with `agents.pricing`; the loopback API counts about four characters a token,
so the token counts, and the costs, are approximate.
Run: python -m bench.agent [--drafts 5] [--latency 0.5 1.5] [--token-delay 0.03]
     python -m bench.agent --cost
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from agents import pricing, prompts
from agents.vp import DEFAULT_MODEL
from bench.common import REDIS_URL, SECRET, drop_prefix, settings_for
from bot.runtime import Runtime, build_runtime
from bot.store import usage_month
from loopback.anthropic import FakeAnthropic
from loopback.harness import InlineExecutor
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver

REPLY = " ".join(
    [
        "We are sorry that checkout has been failing for your EU customers since this morning.",
        "Our engineers have moved traffic to a healthy shard and about 40% of checkouts now",
        "succeed. We are rebuilding the failed shard and will confirm full recovery, or tell",
        "you what is still open, in our next update by 15:00 UTC today.",
    ]
)


def run(latency: float, token_delay: float, drafts: int, redis_url: str) -> dict[str, float]:
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack, FakeAnthropic() as model:
        slack.add_user("U0DECLARER", "dana")
        settings = settings_for(
            slack,
            redis_url,
            prefix,
            Path(tmp),
            model=model,
        )
        rt = build_runtime(settings, listener_executor=InlineExecutor())
        try:
            driver = SlackDriver(slack, SECRET, app=rt.app)
            driver.command("Initech: checkout failing for EU users --arr 480k")
            channel = next(c for c in slack.channels.values() if c.name.endswith("initech"))
            model.latency, model.token_delay = latency, token_delay
            first_text, updates = [], []
            for _ in range(drafts):
                model.reply_with(REPLY)
                before = len(slack.calls)
                start = time.monotonic()
                driver.event(
                    {
                        "type": "app_mention",
                        "user": "U0DECLARER",
                        "text": f"<@{slack.bot_user_id}> draft update",
                        "channel": channel.id,
                        "ts": f"{time.time():.6f}",
                    }
                )
                calls = slack.calls[before:]
                shown = [
                    c
                    for c in calls
                    if c.method == "chat.update" and "Drafting" not in str(c.args.get("blocks"))
                ]
                first_text.append(shown[0].finished - start)
                updates.append(sum(c.method == "chat.update" for c in calls))
            usage = [r.usage for r in model.requests]
        finally:
            rt.close()
            drop_prefix(redis_url, prefix)
    totals = [
        u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
        for u in usage
    ]
    cacheable = [u["cache_creation_input_tokens"] + u["cache_read_input_tokens"] for u in usage]
    read = [u["cache_read_input_tokens"] for u in usage[1:]]
    return {
        "first_text": statistics.median(first_text),
        "updates": statistics.mean(updates),
        "tokens": statistics.mean(totals),
        "cacheable": sum(cacheable) / sum(totals),
        "read": statistics.mean(read) if read else 0.0,
    }


# -- what one escalation costs ----------------------------------------------------------------

# A typical escalation, as the war room would say it to `@vp`: what happens, what the agent is
# asked, in order. "draft update" after "resolve" is the resolution notice; resolving also asks
# for the post-incident review.
ESCALATION = [
    ("fact", "impact Checkout fails for most EU users since 09:40 UTC"),
    ("fact", "doing Moving EU checkout traffic to a healthy shard"),
    ("letter", "draft update"),
    ("answer", "What have we told the customer so far?"),
    ("fact", "update About 40% of EU checkouts succeed again on the healthy shard"),
    ("fact", "workaround Orders can still be placed by phone"),
    ("letter", "draft update"),
    ("answer", "Is there anything the customer should do meanwhile?"),
    ("fact", "cause confirmed A failed storage node in the EU database shard"),
    ("fact", "update The shard is rebuilt and every EU checkout succeeds again"),
    ("letter", "draft update"),
    ("answer", "What is the ARR at risk and who is the executive contact?"),
    ("review", "resolve Shard rebuilt, checkout restored for every EU user"),
    ("letter", "draft update"),
]
_KIND_BY_BUDGET = {budget: kind for kind, budget in prompts.MAX_TOKENS.items()}


def _stand_in(rt: Runtime, channel_id: str) -> Callable[[dict[str, Any]], str]:
    """The loopback model's replies: the offline drafter's text of the same kind for the
    record as it stands, about as long as the model's drafts (the request's max_tokens says
    which kind was asked for)."""

    def reply(body: dict[str, Any]) -> str:
        kind = _KIND_BY_BUDGET[body["max_tokens"]]
        esc = rt.escalations.in_channel(channel_id)
        asked = ("What is the status?",) if kind == "answer" else ()
        text = rt.agent.offline(kind, rt.desk.grounds.of(esc), "bench", *asked).text
        return text.partition("\n")[2] if kind == "answer" else text  # no "offline" label

    return reply


def escalation_cost(redis_url: str, model_name: str, *, cold: bool) -> list[dict[str, Any]]:
    """Run `ESCALATION` through the production app and return the model usage it logged.
    `cold`: the prompt cache is empty at every call, as when calls are more than 5 minutes
    apart (its entries live 5 minutes); otherwise every call after the first reads it."""
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack, FakeAnthropic() as model:
        slack.add_user("U0DECLARER", "dana")
        # The asks of hours come within seconds here: no per-person limit gets in the way.
        settings = settings_for(
            slack, redis_url, prefix, Path(tmp), model=model, agent_requests_per_minute=600
        )
        settings = settings.model_copy(update={"model": model_name})
        rt = build_runtime(settings, listener_executor=InlineExecutor())
        try:
            driver = SlackDriver(slack, SECRET, app=rt.app)
            driver.command("Initech: checkout failing for EU users --arr 480k")
            channel = next(c for c in slack.channels.values() if c.name.endswith("initech"))
            model.respond(_stand_in(rt, channel.id))
            month = usage_month(rt.clock())
            for step, text in ESCALATION:
                before = len(rt.store.model_usage(month))
                if cold:
                    model.forget_cache()
                driver.event(
                    {
                        "type": "app_mention",
                        "user": "U0DECLARER",
                        "text": f"<@{slack.bot_user_id}> {text}",
                        "channel": channel.id,
                        "ts": f"{time.time():.6f}",
                    }
                )
                if step != "fact":  # the call is made and logged before the next step
                    deadline = time.monotonic() + 60
                    while len(rt.store.model_usage(month)) == before:
                        if time.monotonic() > deadline:
                            said = [str(c.args.get("text"))[:200] for c in slack.calls[-3:]]
                            raise RuntimeError(f"no model call logged for {text!r}: {said}")
                        time.sleep(0.05)
            return rt.store.model_usage(month)
        finally:
            rt.close()
            drop_prefix(redis_url, prefix)


def _cost(model: str, entries: list[dict[str, Any]]) -> Decimal:
    return sum((pricing.cost(model, e) or Decimal(0) for e in entries), Decimal(0))


def _mean(entries: list[dict[str, Any]], field: str) -> float:
    return sum(e[field] for e in entries) / len(entries)


def print_cost(redis_url: str, model: str) -> None:
    runs = {cold: escalation_cost(redis_url, model, cold=cold) for cold in (False, True)}
    print(
        f"What the VP agent's model calls cost at {model}'s list prices (USD; Anthropic, "
        f"{pricing.PRICES_TAKEN.isoformat()}). Token counts are the loopback API's, about 4 "
        "characters a token: APPROXIMATE. The model's replies are stood in for by the "
        "offline drafter's texts of the same record."
    )
    for cold, entries in runs.items():
        letters = [e for e in entries if e["kind"] == "customer_update"]
        answers = [e for e in entries if e["kind"] == "answer"]
        rows = [
            ("first customer update", letters[:1]),
            ("later customer update (each)", letters[1:-1]),
            ("resolution notice", letters[-1:]),
            ("answer to a question (each)", answers),
            ("post-incident review", [e for e in entries if e["kind"] == "review"]),
        ]
        print()
        print(
            "Calls more than 5 minutes apart (the prompt cache written at every call):"
            if cold
            else "Calls within 5 minutes of each other (the prompt cache read after the first):"
        )
        print()
        print(
            f"| {'call':<30} | {'input':>6} | {'cache write':>11} | {'cache read':>10} | "
            f"{'output':>6} | {'cost':>8} |"
        )
        print(f"|{'-' * 32}|{'-' * 8}|{'-' * 13}|{'-' * 12}|{'-' * 8}|{'-' * 10}|")
        for name, group in [*rows, (f"one escalation ({len(entries)} calls)", entries)]:
            if not group:
                continue
            # One escalation: its sums; every other row: one call, on average.
            n = 1 if group is entries else len(group)
            print(
                f"| {name:<30} | {_mean(group, 'input_tokens') * len(group) / n:>6.0f} | "
                f"{_mean(group, 'cache_creation_input_tokens') * len(group) / n:>11.0f} | "
                f"{_mean(group, 'cache_read_input_tokens') * len(group) / n:>10.0f} | "
                f"{_mean(group, 'output_tokens') * len(group) / n:>6.0f} | "
                f"{'$' + format(_cost(model, group) / n, '.4f'):>8} |"
            )
    entries = runs[False]
    letters = sum(e["kind"] == "customer_update" for e in entries)
    answers = sum(e["kind"] == "answer" for e in entries)
    print()
    print(
        f"One escalation: {letters - 1} customer updates, a resolution notice, a review and "
        f"{answers} answers. The same calls at each model's list prices (the same approximate "
        "token counts for every model, though each model's tokenizer counts its own):"
    )
    print()
    heads = (
        "one escalation, cache read",
        "one escalation, cache written",
        "100 escalations, cache written",
    )
    print(f"| {'model':<18} | " + " | ".join(heads) + " |")
    print(f"|{'-' * 20}|" + "|".join("-" * (len(h) + 2) for h in heads) + "|")
    for other in pricing.PRICES:
        warm, cold_cost = _cost(other, runs[False]), _cost(other, runs[True])
        cells = (f"${warm:.4f}", f"${cold_cost:.4f}", f"${cold_cost * 100:.2f}")
        print(
            f"| {other:<18} | "
            + " | ".join(f"{c:>{len(h)}}" for c, h in zip(cells, heads, strict=True))
            + " |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drafts", type=int, default=5)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.5, 1.5])
    parser.add_argument("--token-delay", type=float, default=0.03)
    parser.add_argument(
        "--cost", action="store_true", help="what the model calls of one escalation cost"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the model --cost runs with")
    args = parser.parse_args()
    redis_url = REDIS_URL
    if args.cost:
        print_cost(redis_url, args.model)
        return
    words = len(REPLY.split())
    print(
        f"{args.drafts} customer-update drafts per row; {words} streamed words each, "
        f"{args.token_delay * 1000:.0f} ms apart"
    )
    print(
        f"| {'model latency':>13} | {'first text in Slack':>19} | {'chat.update/draft':>17} | "
        f"{'input tokens/call':>17} | {'cacheable':>9} | {'cache read/call':>15} |"
    )
    print(f"|{'-' * 15}|{'-' * 21}|{'-' * 19}|{'-' * 19}|{'-' * 11}|{'-' * 17}|")
    for latency in args.latency:
        r = run(latency, args.token_delay, args.drafts, redis_url)
        print(
            f"| {latency * 1000:>10.0f} ms | {r['first_text'] * 1000:>16.0f} ms | "
            f"{r['updates']:>17.1f} | {r['tokens']:>17.0f} | {r['cacheable']:>8.0%} | "
            f"{r['read']:>15.0f} |"
        )


if __name__ == "__main__":
    main()
