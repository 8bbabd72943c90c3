"""Property: whatever people type, every message the bot builds from it is inert and fits.

For arbitrary text in every field people fill (customer, summary, updates, resolution, what the
model writes), every message builder gives: no broadcast or group ping, no link or mention but
the bot's own (the IC, the VPs, the declarer, the room), no raw `<` or `>`, every `&` an escape,
people's words escaped exactly once, mrkdwn sent verbatim, and Slack's limits kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import escalation as domain
from bot.domain.declaration import Accepted, Declaration
from bot.domain.drafts import Draft, DraftKind
from bot.domain.kpi import compute
from bot.domain.timeline import EventKind, event
from bot.slack import blocks, draft_view, home_view
from bot.slack.brief import brief
from bot.slack.text import inert, readable
from protocols.loader import load_protocol

P = load_protocol()
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BOT_IDS = {"@U0IC", "@U0VP", "@U0DECL", "@UBOT", "#C0ROOM"}

# What people type, as Slack sends it and as it reads: broadcasts, group pings, links made
# to look like something else, mentions, escapes, mrkdwn, and plain words.
TRICKS = [
    "<!channel>", "<!here>", "<!everyone>", "<!subteam^S0SEC|@security>", "<@U0EVIL>",
    "<@U0EVIL|eve>", "<#C0EVIL|general>", "<https://evil.example/x|status page>",
    "<https://evil.example>", "&lt;!channel&gt;", "&amp;", "&lt;", "&gt;", "&amp;lt;",
    "https://evil.example/login", "@here", "@channel", "*bold*", "`code`", "<", ">", "&", "|",
    "<!date^1^{date}|x>", "\n", "  ",
]  # fmt: skip
words = st.lists(
    st.one_of(st.sampled_from(TRICKS), st.text(min_size=1, max_size=12)), max_size=40
).map("".join)
long_words = st.lists(
    st.one_of(st.sampled_from(TRICKS), st.text(min_size=1, max_size=400)), max_size=80
).map("".join)
said = words.map(readable)  # what the bot keeps: Slack's escaping undone once
long_said = long_words.map(readable)

ENTITY = re.compile(r"<([^<>]*)>")
DATE = re.compile(r"!date\^\d+\^[^|<>]*\|[^<>]*")
ESCAPE = re.compile(r"&(amp|lt|gt);")


def check_mrkdwn(text: str) -> None:
    for m in ENTITY.finditer(text):
        body = m.group(1)
        assert body in BOT_IDS or DATE.fullmatch(body), f"foreign markup <{body}> in {text!r}"
    rest = ENTITY.sub("", text)
    assert "<" not in rest and ">" not in rest, f"a raw angle bracket in {text!r}"
    assert len(ESCAPE.findall(text)) == text.count("&"), f"a bare & in {text!r}"


def texts(node: Any) -> list[dict]:
    """Every text object in a block tree."""
    found = []
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            found.append(node)
        for value in node.values():
            found.extend(texts(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(texts(value))
    return found


def check_message(message: blocks.Message, *, max_blocks: int = 50) -> None:
    check_mrkdwn(message.text)
    assert 0 < len(message.text) <= 40_000
    tree = blocks.as_dicts(message.blocks)
    assert 0 < len(tree) <= max_blocks
    total = 0
    for block in tree:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
    for obj in texts(tree):
        total += len(obj["text"])
        # Slack reads `&`, `<` and `>` as control characters in plain text too.
        check_mrkdwn(obj["text"])
        if obj["type"] == "mrkdwn":
            assert obj.get("verbatim") is True, "mrkdwn with people's words goes out verbatim"
    assert total <= 12_000, f"{total} characters of block text: msg_blocks_too_long"


def escalation(customer: str, summary: str, **changes: Any) -> domain.Escalation:
    esc, _ = domain.open_escalation(
        id="esc-20260302-x",
        channel_id="C0ROOM",
        declaration=Declaration(
            customer=customer or "x", summary=summary or "y", declarer="U0DECL", arr=250_000
        ),
        ic="U0IC",
        vps=("U0VP",),
        protocol=P,
        now=NOW,
        clock_scale=1,
        ic_source="rotation",
        bot_user_id="UBOT",
    )
    return esc.model_copy(update=changes)


common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(customer=said.map(lambda s: s[:80]), summary=long_said.map(lambda s: s[:2000]))
def test_room_messages(customer: str, summary: str) -> None:
    esc = escalation(customer, summary)
    topic = blocks.topic(esc)
    check_mrkdwn(topic)
    assert len(topic) <= 250
    for message in (
        brief(esc, P),
        blocks.exec_notice(esc, P),
        blocks.exec_notice(esc.model_copy(update={"private": True}), P),
        blocks.overdue_reminder(esc, P.steps[0].title, P.steps[0].id, NOW, ("U0VP",)),
        blocks.update_nudge(esc, timedelta(hours=2), ("U0VP",)),
        blocks.follow_up(esc, 0, 2, timedelta(hours=24), "confirm"),
    ):
        check_message(message)
    notice = blocks.exec_notice(esc, P)
    assert "<#C0ROOM>" in notice.blocks[0].text.text  # the room's link is never clipped away
    if len(summary) < 500:
        assert inert(esc.summary) in blocks.as_dicts(brief(esc, P).blocks)[1]["text"]["text"]


@common
@given(resolution=long_said.map(lambda s: s[:4000] or "fixed"), update=long_said)
def test_resolution_status_and_timeline(resolution: str, update: str) -> None:
    esc = escalation("Acme", "down").model_copy(
        update={
            "status": domain.Status.RESOLVED,
            "resolved_at": NOW + timedelta(hours=1),
            "resolution": resolution,
        }
    )
    check_message(blocks.resolved_notice(esc))
    assert "<#C0ROOM>" in blocks.resolved_notice(esc).blocks[0].text.text
    check_mrkdwn(blocks.status(esc, P, NOW + timedelta(hours=2)))
    events = [
        event(NOW + timedelta(minutes=i), EventKind.UPDATE, "U0IC", update) for i in range(60)
    ]
    events.append(
        event(NOW, EventKind.IC_ASSIGNED, "U0DECL", "Incident commander assigned", ic="U0IC")
    )
    rendered = blocks.timeline(events)
    check_mrkdwn(rendered)
    assert len(rendered) <= 3000
    check_message(blocks.Message(text=rendered, blocks=blocks.text_blocks(rendered)))


@common
@given(customer=said.map(lambda s: s[:80]), wait=st.floats(0, 600))
def test_acks(customer: str, wait: float) -> None:
    for accepted in (Accepted("t", wait=wait), Accepted(None, channel_id="C0ROOM"), Accepted(None)):
        check_mrkdwn(blocks.declaration_ack(customer, accepted, 20))
    check_mrkdwn(blocks.queued_notice(customer, wait))


@common
@given(customer=said.map(lambda s: s[:80]))
def test_app_home_and_digest(customer: str) -> None:
    esc = escalation(customer, "down")
    k = compute([(esc, [])], P, NOW, since=NOW - timedelta(days=30))
    view = home_view.home_view("U0IC", [esc], k, P, NOW, 30)
    check_message(blocks.Message(text="home", blocks=view.blocks), max_blocks=100)
    check_message(home_view.digest_message(k, [esc], [esc], NOW))


@common
@given(text=long_said, flag=said.map(lambda s: s[:40] or "breach"))
def test_drafts(text: str, flag: str) -> None:
    for kind in DraftKind:
        draft = Draft(
            id="d1",
            escalation="esc-20260302-x",
            kind=kind,
            channel="C0ROOM",
            text=text * 4,
            flags=(flag,),
            created_at=NOW,
            offline=True,
            offline_reason=flag,
        )
        check_message(draft_view.drafting(kind, text * 4))
        pages = draft_view.draft_pages(draft, "Acme <!here>")
        for page in pages:
            check_message(page)
        if kind is DraftKind.CUSTOMER_UPDATE:
            approved = draft.model_copy(update={"approved_by": "U0VP", "approved_at": NOW})
            for page in draft_view.draft_pages(approved, "Acme"):
                check_message(page)


@common
@given(text=long_said.map(lambda s: s.strip() or "x"))
def test_the_edit_form_holds_the_whole_draft(text: str) -> None:
    draft = Draft(
        id="d1", escalation="e", kind=DraftKind.CUSTOMER_UPDATE, channel="C", text=text * 3,
        created_at=NOW,
    )  # fmt: skip
    view = draft_view.edit_draft_form(draft).to_dict()
    assert len(view["blocks"]) <= 100
    values = {}
    for block in view["blocks"]:
        value = block["element"]["initial_value"]
        assert len(value) <= block["element"]["max_length"] == 3000
        values[block["block_id"]] = {"value": {"value": value}}
    # Nothing is lost: the pieces read back to the draft's words.
    assert draft_view.read_edit_form(values).split() == draft.text.split()
