"""The post-incident review read from a record made through the bot, as a support team makes
it: the impact since three days (across a month's end), an ETA that slipped, a cause
suspected and then confirmed in other words, a letter that promised the next update, and the
resolution. The request the loopback model receives and the offline review both carry the
credit the account's capped terms come to month by month, the key moments and the letters."""

from __future__ import annotations

from datetime import UTC, timedelta

import yaml

from agents import offline_review
from agents.grounding import human_time
from bot.slack.ids import ActionId
from tests.rooms import wait_until

MEMBER = "U0CSMGR01"
ACCOUNT = {
    "name": "Initech",
    "executive_contact": "Dana Whitfield, CTO",
    "timezone": "UTC",
    "sla": "99.9% monthly uptime",
    "credits": "10% of the monthly fee per 0.1% below the SLA, up to 30%",
}


def approve(room, draft) -> None:
    value = next(
        el["value"]
        for b in draft.blocks
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["action_id"] == ActionId.DRAFT_APPROVE
    )
    room.slack.click(room.channel.id, ActionId.DRAFT_APPROVE, value, user="U0VPSUPRT", ts=draft.ts)


def test_the_review_reads_the_record_as_it_happened(room, fake_anthropic, memory_dir, clock):
    insights = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.parent.mkdir(parents=True, exist_ok=True)
    insights.write_text(yaml.safe_dump({"customers": [ACCOUNT]}))
    # Declared Mon 2 Mar 2026 10:00 UTC; the customer has been affected since Fri 27 Feb.
    room.mention("impact EU users cannot open their TPS reports --since 3d", user=MEMBER)
    clock.advance(timedelta(minutes=10))
    room.mention("eta by 13:00 UTC today")
    room.mention("cause session cache race from PR 8812", user=MEMBER)
    clock.advance(timedelta(minutes=20))
    promised = human_time(clock() + timedelta(hours=1), UTC)
    fake_anthropic.reply_with(
        "Subject: Update\n\nDear Dana,\n\nYour EU users cannot open their TPS reports.\n"
        f"You will have our next update by {promised}.\n\nKind regards,\nVictoria Hale"
    )
    ts = room.mention("draft update")
    wait_until(lambda: room.thread(ts), 10, "the draft")
    (draft,) = room.thread(ts)
    approve(room, draft)
    clock.advance(timedelta(minutes=30))
    room.mention("eta by 16:00 UTC today")
    room.mention("cause confirmed a race in the session cache introduced by PR 8812")
    clock.advance(timedelta(hours=1))
    fake_anthropic.reply_with("## Summary\nResolved.\n")
    room.mention("resolve rolled back the cache change")

    def filed() -> bool:
        return any(e.kind == "review" for e in room.rt.store.timeline(room.esc_id))

    wait_until(filed, 10, "the review")
    request = fake_anthropic.requests[-1].user_text()
    assert "Draft the post-incident review" in request
    derived = request.split("<derived_facts>")[1]
    # 62 h of February's 28 days and 12 h of March's 31: each over the 30% cap on its own
    credit = next(x for x in derived.splitlines() if x.startswith("credit:"))
    assert credit.startswith(
        "credit: 30% of the February 2026 fee and 30% of the March 2026 fee (basis: the uptime "
        "term)."
    )
    assert "use it" not in request
    assert "The cause is confirmed: never call it" in request
    moments = [x for x in derived.splitlines() if x.startswith("moment:")]
    assert moments[0].startswith("moment: 2026-02-27 10:00 UTC Impact began")
    assert any("ETA changed" in x and "by 16:00 UTC today" in x for x in moments)
    assert any(
        "Letter 1 to the customer approved (@victoria); it promised the next update by "
        "2026-03-02 11:30 UTC" in x
        for x in moments
    )
    assert not any("overdue" in x.casefold() for x in moments)

    g = room.rt.desk.grounds.of(room.esc)
    review = offline_review.offline_review_data(g)
    assert not any("PR 8812" in x for x in review["contributing_factors"])  # confirmed: the cause
    assert review["customer_communication"][1] == (
        "Letter 1 (2026-03-02 10:30 UTC) promised the next update by 2026-03-02 11:30 UTC: "
        "missed, no letter has followed."
    )
    assert review["compensation"].startswith(
        "Recommend offering the SLA credit: 30% of the February 2026 fee and 30% of the March "
        "2026 fee."
    )
