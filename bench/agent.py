"""The VP agent's drafts: how soon text shows in Slack, how often the message is updated,
and how much of each prompt is served from the prompt cache.

Drives `@vp draft update` through the production app against the loopback Slack and the
loopback Messages API (with a configurable model latency and streaming pace) and a real
Redis (REDIS_URL, default 127.0.0.1:6379, under a throwaway key prefix).
Run: python -m bench.agent [--drafts 5] [--latency 0.5 1.5] [--token-delay 0.03]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import REDIS_URL, SECRET, drop_prefix, settings_for
from bot.runtime import build_runtime
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drafts", type=int, default=5)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.5, 1.5])
    parser.add_argument("--token-delay", type=float, default=0.03)
    args = parser.parse_args()
    redis_url = REDIS_URL
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
