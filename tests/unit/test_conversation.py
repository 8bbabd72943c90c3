"""Letters that follow the customer conversation: what each approved letter told the customer
and what changed since (an ended impact, a changed or passed ETA, a late update, a line the
approver removed), every recorded fact used and nothing forced, one start, names as people
write them, and findings that flag what is wrong and only that."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agents import audit, offline, prompts
from agents.checks import find_placeholders
from agents.grounding import ActionItem, Fact, Told
from agents.playbook import (
    conversation,
    eta_due,
    frame,
    greeting_name,
    left_out_of,
    past,
    promised_in,
)
from tests.agent_records import ACCOUNT, FACTS, IMPACT, WORKAROUND, at, grounding, resolved

CHICAGO = ZoneInfo("America/Chicago")
ETA = Fact("within 2 hours", "@ivan", at(60), "T12")


def kinds(g, text: str) -> set[str]:
    return {f.kind for f in audit.letter(g, text)}


def told(minutes: float, **fields) -> Told:
    """A letter approved at +`minutes`, telling the facts as the records have them."""
    fields.setdefault("impact", IMPACT.text)
    fields.setdefault("workaround", WORKAROUND.text)
    return Told(at=at(minutes), **fields)


# --- an ended impact -------------------------------------------------------------------------


def ended(**changes):
    return grounding(facts=replace(FACTS, impact_ended=at(140), eta=ETA), **changes)


def test_once_the_impact_ended_the_letter_says_so_in_the_past_with_no_fix_time_or_workaround():
    letter = offline.offline_customer_update(ended())
    assert "the impact on your team has ended" in letter
    assert "What you experienced: Checkout failed for your customers in the EU." in letter
    assert "ended Mon 6 May 2024, 11:20 CDT" in letter
    assert "When to expect a fix" not in letter and "within 2 hours" not in letter
    assert WORKAROUND.text not in letter and "meanwhile" not in letter
    assert "disruption this is causing" not in letter
    assert not kinds(ended(), letter) & {"state", "promise", "fact not used", "missing fact"}


def test_ongoing_wording_after_the_impact_ended_is_found() -> None:
    still = offline.offline_customer_update(grounding(facts=replace(FACTS, eta=ETA)))
    found = audit.letter(ended(), still)
    assert "state" in {f.kind for f in found}, found
    assert any("does not say so" in f.detail for f in found)


def test_the_model_is_told_the_impact_ended() -> None:
    task = prompts.customer_update_messages(ended())[0]["content"][1]["text"]
    assert 'The impact ended "Mon 6 May 2024, 11:20 CDT"' in task
    assert "no workaround and no time for a fix" in task
    assert "a workaround: [workaround:" not in task


# --- promises: the ETA, the next update ------------------------------------------------------


def test_a_changed_eta_is_named_with_an_apology_and_the_new_time() -> None:
    new = Fact("by 16:00 CDT", "@ivan", at(120), "T13")
    g = grounding(
        facts=replace(FACTS, eta=new), told=(told(70, eta=ETA.text, eta_at=ETA.at),), now=at(130)
    )
    letter = offline.offline_customer_update(g)
    assert "Our last update told you to expect a fix within 2 hours. That estimate has changed" in (
        " ".join(letter.split())
    )
    assert "sorry: we now expect the fix by 16:00 CDT." in letter
    assert not kinds(g, letter) & {"promise", "state", "fact not used"}
    # Silently replacing it is what the checks find.
    silent = letter.replace("That estimate has changed, and we are sorry", "Good news")
    silent = silent.replace("sorry", "glad")
    assert "promise" in kinds(g, silent)


def test_an_eta_that_passed_is_owned_not_repeated() -> None:
    g = grounding(facts=replace(FACTS, eta=ETA), told=(told(70, eta=ETA.text, eta_at=ETA.at),))
    assert conversation(g).eta_missed is None  # +150: due at +180, not passed yet
    g = replace(g, now=at(200))
    assert conversation(g).eta_missed == at(180)
    letter = offline.offline_customer_update(g)
    assert "That time has passed without a fix, and we are sorry" in " ".join(letter.split())
    assert "When to expect a fix: Within 2 hours" not in letter
    assert not kinds(g, letter) & {"promise", "fact not used"}


def test_a_letter_later_than_promised_says_so() -> None:
    g = grounding(told=(told(40, promised=at(140)),))
    letter = offline.offline_customer_update(g)
    assert "promised you the next one by Mon 6 May 2024, 11:20 CDT" in " ".join(letter.split())
    assert "promise" not in kinds(g, letter)
    quiet = letter.replace("and this one comes later than that", "as planned")
    assert "promise" in kinds(g, quiet)


def test_the_promised_time_is_the_clock_approvals_never_move_later() -> None:
    # The last letter promised +200; the bot's own update clock says +215.
    g = grounding(told=(told(100, promised=at(200)),))
    assert frame(g).promise_at == at(200)
    assert "next update by Mon 6 May 2024, 12:20 CDT" in offline.offline_customer_update(g)


def test_the_promise_is_read_back_from_the_approved_text() -> None:
    text = "Hello.\n\nYou will have our next update by Mon 6 May 2024, 12:20 CDT, sooner if not."
    assert promised_in(text, CHICAGO) == at(200)
    assert promised_in("We restarted it at Mon 6 May 2024, 12:20 CDT.", CHICAGO) is None


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("within 2 hours", at(180)),
        ("in about 30 minutes", at(90)),
        ("by 16:00 CDT", datetime(2024, 5, 6, 21, 0, tzinfo=UTC)),
        ("by 4pm", datetime(2024, 5, 6, 21, 0, tzinfo=UTC)),
        ("as soon as we can", None),
    ],
)
def test_an_eta_falls_due_when_it_says(text: str, due) -> None:
    assert eta_due(text, at(60), CHICAGO) == due


# --- every recorded fact used, nothing forced ------------------------------------------------


def test_advice_reaches_every_letter_not_only_a_security_one() -> None:
    advice = Fact("Do not refund manually: it would refund the shopper twice", "@ivan", at(60))
    g = grounding(facts=replace(FACTS, advice=advice))
    letter = offline.offline_customer_update(g)
    assert "What we recommend you do: Do not refund manually" in letter
    assert "flag term" not in kinds(g, letter)  # "refund" is in the recorded fact itself
    dropped = letter.replace(f"What we recommend you do: {advice.text}.", "")
    assert "fact not used" in kinds(g, dropped)
    task = prompts.customer_update_messages(g)[0]["content"][1]["text"]
    assert "Give the advice fact" in task


def test_no_workaround_is_said_without_a_placeholder() -> None:
    g = grounding(facts=replace(FACTS, workaround=None, no_workaround=True))
    letter = offline.offline_customer_update(g)
    assert "there is no workaround for this" in letter
    assert not any(h.startswith("[workaround") for h in find_placeholders(letter))
    assert "missing fact" not in kinds(g, letter)
    task = prompts.customer_update_messages(g)[0]["content"][1]["text"]
    assert "[workaround:" not in task and "There is no workaround (recorded)" in task


def test_a_resolution_notice_says_what_fixed_it_and_what_we_are_changing() -> None:
    fixed = Fact("We moved EU checkout to a healthy region", "@ivan", at(295), "T20")
    g = resolved(
        facts=replace(FACTS, impact_ended=at(290), fixed=fixed),
        action_items=(
            ActionItem("@erin", "Alert on EU checkout errors within a minute", None, "@ivan",
                       "A1", prevention=True),
            ActionItem("@ivan", "Write up the review", None, "@ivan", "A2"),
        ),
    )  # fmt: skip
    letter = offline.offline_customer_update(g)
    assert "What fixed it: We moved EU checkout to a healthy region." in letter
    assert (
        "What we are changing so it does not happen again: Alert on EU checkout errors within a "
        "minute." in letter
    )
    assert "Write up the review" not in letter
    assert find_placeholders(letter) == []
    assert "missing fact" not in kinds(g, letter)


def test_a_line_the_approver_removed_stays_out_until_its_fact_changes() -> None:
    g = grounding(told=(told(100, left_out=("workaround",)),))
    assert WORKAROUND.text not in offline.offline_customer_update(g)
    assert "fact not used" not in kinds(g, offline.offline_customer_update(g))
    changed = Fact("Orders can be placed by phone", "@erin", at(120), "T14")
    g2 = replace(g, facts=replace(FACTS, workaround=changed))
    assert "Orders can be placed by phone" in offline.offline_customer_update(g2)


def test_an_edit_that_drops_a_fact_is_read_as_removed() -> None:
    recorded = {"workaround": WORKAROUND.text, "doing": "Moving EU checkout traffic"}
    edited = "Dear Dana,\n\nWhat we are doing: Moving EU checkout traffic.\n"
    assert left_out_of(recorded, edited) == ("workaround",)


# --- one start -------------------------------------------------------------------------------


def test_the_letter_gives_one_start_in_the_accounts_zone() -> None:
    impact = Fact("Shoppers cannot pay at checkout since 09:10", "@ivan", at(25), "T4")
    began = datetime(2024, 5, 6, 9, 10, tzinfo=CHICAGO)
    g = grounding(facts=replace(FACTS, impact=impact, impact_began=began, began_from="text"))
    letter = offline.offline_customer_update(g)
    assert "Shoppers cannot pay at checkout. This began Mon 6 May 2024, 09:10 CDT." in letter
    assert "since 09:10" not in letter
    assert not kinds(g, letter) & {"start", "time zone"}
    other = letter.replace("This began Mon 6 May 2024, 09:10 CDT", "It started at 08:40 CDT")
    assert "start" in kinds(g, other)


def test_two_recorded_starts_that_disagree_are_flagged() -> None:
    g = grounding(facts=replace(FACTS, stated_began=at(-50), began_from="since"))
    found = [f for f in audit.letter(g, offline.offline_customer_update(g)) if f.kind == "start"]
    assert found and "two starts are recorded" in found[0].detail


# --- names -----------------------------------------------------------------------------------


def test_a_salutation_on_file_is_used() -> None:
    g = grounding(customer_facts={**ACCOUNT, "executive_contact": "Mr Tan Wei Ming, CFO",
                                  "salutation": "Mr Tan"})  # fmt: skip
    assert "\nDear Mr Tan,\n" in offline.offline_customer_update(g)


def test_a_family_name_is_never_guessed_from_word_order() -> None:
    g = grounding(customer_facts={**ACCOUNT, "executive_contact": "Mr Tan Wei Ming, CFO"})
    letter = offline.offline_customer_update(g)
    assert "Dear Mr Ming" not in letter and "Dear Mr Tan," not in letter
    assert "Dear [salutation: how Mr Tan Wei Ming is greeted" in letter
    assert greeting_name("Tan Wei Ming") == "Tan Wei Ming"


# --- findings that can be trusted ------------------------------------------------------------


def test_a_customer_fact_is_never_internal_text() -> None:
    # The fact's own timeline entry carries its label; quoting the fact is the point.
    timeline = tuple(
        replace(e, kind="fact", text=f"Impact: {IMPACT.text}") if e.id == "T4" else e
        for e in grounding().timeline
    )
    g = grounding(timeline=timeline)
    assert "copied" not in kinds(g, offline.offline_customer_update(g))


@pytest.mark.parametrize(
    ("zone", "line"),
    [
        ("America/New_York", "We expect a fix by 14:00 ET."),
        ("Europe/Berlin", "We expect a fix by 14:00 CET."),
        ("Asia/Singapore", "We expect a fix by 14:00 SGT."),
        ("Asia/Singapore", "We expect a fix by 14:00 UTC+8."),
    ],
)
def test_the_accounts_zone_by_any_of_its_names_is_its_zone(zone: str, line: str) -> None:
    eta = Fact(line.removeprefix("We expect a fix ").rstrip("."), "@ivan", at(60), "T12")
    g = grounding(customer_facts={**ACCOUNT, "timezone": zone}, facts=replace(FACTS, eta=eta))
    letter = offline.offline_customer_update(g)
    assert "time zone" not in kinds(g, letter + "\n" + line)


def test_a_foreign_zone_is_still_found() -> None:
    g = grounding(customer_facts={**ACCOUNT, "timezone": "America/New_York"})
    assert "time zone" in kinds(g, offline.offline_customer_update(g) + "\nBy 14:00 PT.")


@pytest.mark.parametrize(
    ("text", "was"),
    [
        ("Checkout fails for your customers", "Checkout failed for your customers"),
        ("Parcel scans are slow", "Parcel scans were slow"),
        ("Shoppers cannot pay", "Shoppers could not pay"),
    ],
)
def test_the_impact_is_told_in_the_past(text: str, was: str) -> None:
    assert past(text) == was


def test_a_date_is_not_a_start_to_strip() -> None:
    impact = Fact("Attachments added since 1 November are missing", "@ivan", at(25), "T4")
    g = grounding(facts=replace(FACTS, impact=impact))
    assert "Attachments added since 1 November are missing." in (offline.offline_customer_update(g))


def test_every_bench_conversation_is_followed_and_its_findings_are_trusted() -> None:
    from bench.draft_cases import cases
    from bench.drafts import GAPS, conversation_row, spoil

    for case in cases():
        letter = offline.offline_customer_update(case.g)
        row = conversation_row(case.g, letter)
        assert False not in row.values(), (case.name, row)
        extra = [f for f in audit.letter(case.g, letter) if f.kind not in GAPS]
        assert extra == [], (case.name, extra)  # no false positive on a clean letter
        spoiled = spoil(case.g, letter)
        if spoiled is not None and spoiled != letter:
            before = set(map(str, audit.letter(case.g, letter)))
            assert set(map(str, audit.letter(case.g, spoiled))) - before, case.name


def test_a_letter_sentence_citing_only_the_internal_record_is_not_backed() -> None:
    from agents import citations

    g = grounding()
    text = "Checkout fails in the EU. [T4]\nWe are 40% through the failover. [T9]\n"
    cited = citations.read(text, g.record_ids(), g.letter_ids())
    assert cited.unsupported == ("We are 40% through the failover.",)
    assert citations.read(text, g.record_ids()).unsupported == ()  # an answer may cite it


# --- letters by situation --------------------------------------------------------------------


def test_a_regulatory_notice_reads_as_a_record_and_asks_for_the_customers_obligations() -> None:
    g = grounding(criteria_ids=("legal_regulatory",))
    letter = offline.offline_customer_update(g)
    assert letter.startswith("Subject: Notice of an incident affecting Zorblax Industries' data")
    assert "written notice" in letter
    assert "disruption" not in letter and "patience" not in letter
    assert "[what the customer must do: for their own obligations" in letter
    assert "situation" not in kinds(g, letter)
    assert "situation" in kinds(g, letter + "\nSorry for the disruption.")


def test_a_press_enquiry_gets_a_paragraph_with_the_press_contact() -> None:
    g = grounding(criteria_ids=("media_pr",), press_contact="Priya Shah, press@example.com")
    letter = offline.offline_customer_update(g)
    assert "questions from the press" in letter
    assert "Priya Shah, press@example.com coordinates our statements." in letter
    without = offline.offline_customer_update(replace(g, press_contact=None))
    assert "[press contact: who coordinates our statements" in without
    task = prompts.customer_update_messages(g)[0]["content"][1]["text"]
    assert '"Priya Shah, press@example.com" as who coordinates' in task


def test_the_executives_asks_are_listed_and_a_letter_that_answers_none_is_flagged() -> None:
    from agents.grounding import RoomMessage

    ask = RoomMessage(at(100), "@sam", "Their CTO asks for a call with our CEO today", "M2")
    g = grounding(room_messages=(ask,))
    letter = offline.offline_customer_update(g)
    found = [f.detail for f in audit.letter(g, letter) if f.kind == "executive ask"]
    assert found == [
        "not answered: “Their CTO asks for a call with our CEO today” (M2)",
        "the letter answers none of the executive's asks",
    ]
    answered = letter.replace(
        "If you would like", "Our CEO will call you today about this. If you would like"
    )
    assert "executive ask" not in kinds(g, answered)
    task = prompts.customer_update_messages(g)[0]["content"][1]["text"]
    assert "Their executive asked for things" in task and "call with our CEO" in task


def test_a_check_in_is_promised_in_the_accounts_business_hours() -> None:
    # Resolved at +5 h (14:00 CDT); the first follow-up falls at 02:00 CDT on Tuesday.
    g = resolved(follow_ups=(at(300 + 12 * 60),))
    assert frame(g).promise == "Tue 7 May 2024, 09:00 CDT"
    late = resolved(
        follow_ups=(at(300 + 12 * 60),),
        customer_facts={**ACCOUNT, "business_hours": "10:30-18:00"},
    )
    assert frame(late).promise == "Tue 7 May 2024, 10:30 CDT"
    weekend = resolved(follow_ups=(datetime(2024, 5, 11, 15, 0, tzinfo=UTC),))  # Saturday
    assert frame(weekend).promise == "Mon 13 May 2024, 09:00 CDT"
    # The organisation's hours (warroom.yaml) when the account names none of its own; the
    # account's own win.
    org = replace(g, business_hours="08:00-16:00")
    assert frame(org).promise == "Tue 7 May 2024, 08:00 CDT"
    assert frame(replace(late, business_hours="08:00-16:00")).promise == (
        "Tue 7 May 2024, 10:30 CDT"
    )


def test_the_organisations_business_hours_are_checked_in_the_config(tmp_path) -> None:
    from bot.config import ConfigError, load_config

    good = tmp_path / "good.yaml"
    good.write_text("business_hours: 08:30-17:30\n")
    assert load_config(good, ()).business_hours == "08:30-17:30"
    assert load_config(None, ()).business_hours == "09:00-17:00"
    bad = tmp_path / "bad.yaml"
    bad.write_text("business_hours: 9 to 5\n")
    with pytest.raises(ConfigError, match="business_hours"):
        load_config(bad, ())


def test_money_may_be_acknowledged_when_the_customer_asked() -> None:
    from agents.grounding import RoomMessage

    def task(g) -> str:
        return prompts.customer_update_messages(g)[0]["content"][1]["text"]

    churn = grounding(criteria_ids=("arr_churn_risk",))
    assert "Never mention churn, renewal, money" in task(churn)
    asked = RoomMessage(at(100), "@sam", "Their CFO wants to know about service credits", "M2")
    told = task(replace(churn, room_messages=(asked,)))
    assert "Never mention churn, renewal or anything" in told
    assert "money came up" in told and "offer and promise no amount" in told
