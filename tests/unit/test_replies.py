"""The customer's replies: how one goes on the timeline, which Slack messages are one, how it
is shown in the war room, and what the agent does with it: reads it as what the customer
asked, answers it without quoting it, and is flagged when a letter quotes it back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents import audit, facts, offline, prompts
from agents.grounding import CustomerSaid, Told
from bot.domain.replies import TEXT_LIMIT, CustomerReply, Via, reply_event
from bot.domain.timeline import EventKind
from bot.slack import blocks
from bot.slack.messages import external_message
from tests.agent_records import at, entry, grounding

QUESTION = "Can you tell us whether any EU orders were charged twice during the outage?"


def reply(text: str = QUESTION, **changes) -> CustomerReply:
    values = {
        "via": Via.SLACK_CONNECT,
        "ref": "C0SHARED:1700000000.000100",
        "author": "Dana Whitfield",
        "organisation": "Acme",
        "text": text,
        "at": at(120),
    }
    return CustomerReply(**{**values, **changes})


# -- the timeline -------------------------------------------------------------------------------


def test_a_reply_is_the_customers_words_with_who_and_where_from() -> None:
    e = reply_event(reply())
    assert e.kind is EventKind.CUSTOMER_REPLY and e.actor is None
    assert e.text == QUESTION and e.at == at(120)
    assert e.data == {
        "who": "Dana Whitfield",
        "organisation": "Acme",
        "via": "slack_connect",
        "ref": "C0SHARED:1700000000.000100",
    }


def test_the_same_reply_is_known_by_where_it_came_from_and_its_id() -> None:
    assert reply().key == reply(text="edited").key == "slack_connect:C0SHARED:1700000000.000100"
    assert reply(via=Via.ZENDESK).key != reply().key


def test_a_pasted_log_is_kept_to_a_bound() -> None:
    assert len(reply_event(reply("x" * (TEXT_LIMIT * 3))).text) == TEXT_LIMIT


# -- which messages are a customer's ------------------------------------------------------------


def body(team: str = "T0ACME", **event) -> dict:
    return {
        "team_id": "T0OURS",
        "authorizations": [{"team_id": "T0OURS", "user_id": "UBOT", "is_bot": True}],
        "event": {
            "type": "message",
            "user": "U0DANA",
            "text": "Any news?",
            "ts": "1700000000.000100",
            "channel": "C0SHARED",
            "team": team,
            "user_team": team,
            "user_profile": {"real_name": "Dana Whitfield", "team": team},
            **event,
        },
    }


def test_a_message_from_a_person_of_another_team_is_a_customers() -> None:
    found = external_message(body())
    assert found is not None
    assert (found.channel, found.user, found.team, found.ts, found.name) == (
        "C0SHARED",
        "U0DANA",
        "T0ACME",
        "1700000000.000100",
        "Dana Whitfield",
    )
    in_thread = external_message(body(thread_ts="1699999999.000100"))
    assert in_thread is not None and in_thread.thread_ts == "1699999999.000100"
    assert found.thread_ts is None
    assert external_message(body(subtype="thread_broadcast")) is not None


@pytest.mark.parametrize(
    "changes",
    [
        {"team": "T0OURS"},  # one of our own people
        {"team": "T0ACME", "bot_id": "B0ACMEBOT"},  # their bot
        {"team": "T0ACME", "subtype": "message_changed"},  # an edit
        {"team": "T0ACME", "subtype": "message_deleted"},
        {"team": "T0ACME", "subtype": "channel_join"},
        {"team": "T0ACME", "text": "   "},
        {"team": "T0ACME", "user": None},
    ],
)
def test_ours_bots_edits_joins_and_empty_messages_are_not(changes: dict) -> None:
    team = changes.pop("team")
    assert external_message(body(team, **changes)) is None


def test_without_authorizations_the_envelopes_team_is_ours() -> None:
    b = body()
    del b["authorizations"]
    assert external_message(b) is not None
    b["team_id"] = "T0ACME"
    assert external_message(b) is None


# -- shown in the war room ------------------------------------------------------------------


def test_the_reply_is_shown_inert() -> None:
    text = blocks.customer_reply("Dana <@U1>", "Acme & Co", "<!here> see <http://x|y>\nline 2")
    assert text.startswith("📨 Dana &lt;@U1&gt; (Acme &amp; Co) replied:\n")
    assert ">&lt;!here&gt; see &lt;http://x|y&gt;\n>line 2" in text
    assert "<!here>" not in text and "<http" not in text


def test_the_timeline_names_who_replied_and_their_company() -> None:
    line = blocks.timeline([reply_event(reply("Any news? <!here>"))])
    assert "customer reply Dana Whitfield (Acme): Any news? &lt;!here&gt;" in line


# -- the agent -------------------------------------------------------------------------------


def said(text: str = QUESTION, minutes: float = 120, ident: str = "T20") -> CustomerSaid:
    return CustomerSaid(at(minutes), "Dana Whitfield", "Zorblax Industries", "slack_connect", text,
                        ident)  # fmt: skip


def asked(text: str = QUESTION):
    s = said(text)
    return grounding(
        timeline=(*grounding().timeline, entry(120, "customer_reply", text, None, "T20")),
        customer_replies=(s,),
    )


def test_the_agent_reads_the_reply_as_what_the_customer_asked() -> None:
    rendered = facts.render_facts(asked())
    assert "<customer_replies" in rendered and "never quote them back" in rendered
    assert 'by="Dana Whitfield"' in rendered and 'state="to answer"' in rendered
    assert QUESTION in rendered
    # Once, above: its timeline entry points there rather than repeating it as internal text.
    assert rendered.count(QUESTION) == 1
    assert "(the customer's reply T20, above)" in rendered
    assert "<customer_replies" not in facts.render_facts(grounding())  # none: no section
    task = prompts.customer_update_messages(asked())[-1]["content"]
    task = task if isinstance(task, str) else " ".join(b.get("text", "") for b in task)
    assert "The customer wrote to us since our last letter (T20)" in task
    assert "Never quote their message back" in task


def test_a_reply_answered_by_a_later_letter_is_not_asked_again() -> None:
    g = replace(asked(), told=(Told(at=at(130)),))
    assert g.unanswered_replies() == ()
    assert 'state="answered by a letter since"' in facts.render_facts(g)
    assert "The customer wrote to us" not in str(prompts.customer_update_messages(g))


def test_the_offline_letter_owns_the_question_without_quoting_it() -> None:
    g = asked()
    letter = offline.offline_customer_update(g)
    assert "Thank you for your message" in letter and "your question" in letter
    assert "charged twice" not in letter
    assert not [f for f in audit.letter(g, letter) if f.kind == "customer's words"]
    statement = replace(g, customer_replies=(said("We are seeing errors since this morning."),))
    letter = offline.offline_customer_update(statement)
    assert "Thank you for your message; we have shared it" in letter
    assert "your question" not in letter


def test_a_letter_that_quotes_the_reply_back_is_flagged() -> None:
    g = asked()
    letter = offline.offline_customer_update(g).replace(
        "Thank you for your message.",
        "You asked whether any EU orders were charged twice during the outage.",
    )
    (finding,) = [f for f in audit.letter(g, letter) if f.kind == "customer's words"]
    assert "any eu orders were charged twice during the outage" in finding.detail
    # Their words are not "internal text" to the other check: one finding, not two.
    assert not [f for f in audit.letter(g, letter) if f.kind == "copied"]
