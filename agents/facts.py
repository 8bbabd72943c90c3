"""The facts of one escalation as the model reads them: delimited data inside
`<escalation_facts>` tags, times in ISO 8601 UTC.

What a customer may be told (`<customer_facts>`, each fact once) is kept apart from the
internal record (`<internal_record>`: summary, account notes, resolution, suspected causes,
timeline, the room's talk, other customers), which the model may translate and never quote;
what each approved letter told the customer is `<customer_conversation>`; what the customer
wrote back, their own words to answer and never to quote, is `<customer_replies>`. People's
text is escaped and one line per entry, so none of it can close a tag or pass for a fact of
its own.
Every entry carries its id, which the draft cites (`agents.citations`).
"""

from __future__ import annotations

from typing import Any

from agents import assessment
from agents.grounding import Fact, Grounding, StepView, format_arr, iso_utc, one_line
from protocols.durations import human_duration

# Words for the protocol's criteria the model may see: the protocol file's titles are written
# for the war room ("Security or data breach incident"), and "breach" is not a word for a
# customer letter to pick up.
CRITERIA = {
    "arr_churn_risk": "top-tier account at risk of churning",
    "multi_customer_outage": "production outage affecting several customers",
    "security_incident": "security incident",
    "legal_regulatory": "legal or regulatory exposure",
    "media_pr": "public or press attention",
    "systemic_product_failure": "systemic product failure",
}


def render_facts(g: Grounding) -> str:
    """The escalation's facts inside `<escalation_facts>` tags; times are ISO 8601 UTC."""
    lines = ["<escalation_facts>"]
    add = lines.append
    add(f"escalation_id: {one_line(g.escalation_id)} (internal: never in a letter)")
    add(f"customer: {one_line(g.customer)}")
    add(f"status: {g.status}")
    add(f"declared_at: {iso_utc(g.declared_at)}")
    add(f"now: {iso_utc(g.now)} ({_span(g, g.now - g.declared_at)} since declaration)")
    if g.resolved_at is not None:
        add(f"resolved_at: {iso_utc(g.resolved_at)} (after {_span(g, g.elapsed())})")
    if g.clock_scale != 1:
        add(f"clock: a drill at {g.clock_scale:g}x speed; durations here are in drill time")
    arr = g.account_arr()
    add(f"arr: {format_arr(arr) if arr is not None else 'not given'}")
    criteria = [CRITERIA.get(c, one_line(c)) for c in g.criteria_ids]
    add(f"criteria: {'; '.join(criteria) or 'none given'} (internal classification)")
    add(f"incident_commander: {one_line(g.ic)}")
    add(f"declared_by: {one_line(g.declarer)}")
    add(f"signer: {one_line(g.signer) if g.signer else 'none on record'}")
    add(f"root_cause: {one_line(g.root_cause() or 'not yet known')} (confirmed causes only)")
    add(f"last_update_at: {_when(g.last_update_at, 'none recorded')}")
    add(f"next_update_due: {_when(g.next_update_due, 'not scheduled')}")
    interval = g.update_interval
    add(f"update_interval: {human_duration(interval) if interval else 'not set'}")
    add(f"first_contact_due: {_when(g.first_contact_due, 'not set')}")
    add(f"first_contact_done_at: {_when(g.first_contact_done_at, 'not done')}")
    follow_ups = ", ".join(iso_utc(t) for t in sorted(g.follow_ups)) or "none scheduled"
    add(f"follow_ups: {follow_ups}")

    add("<account_facts>")
    # Account notes are the war room's view of the account (renewal, mood, plans): they go
    # in the internal record below, never here among the facts to use.
    facts = [(k, v) for k, v in g.customer_facts.items() if _present(v) and k != "notes"]
    for key, value in facts:
        add(f"{one_line(str(key))}: {_fact_value(value)}")
    if not facts:
        add("none on file")
    add("</account_facts>")

    add('<customer_facts note="what the customer may be told, recorded for them">')
    said = g.facts
    for kind, fact in (
        ("impact", said.impact),
        ("workaround", said.workaround),
        ("advice", said.advice),
        ("doing", said.doing),
        ("eta", said.eta),
        ("confirmed_cause", said.cause),
        ("fixed", said.fixed),
    ):
        if fact:
            add(_fact_line(kind, fact))
        elif kind == "workaround" and said.no_workaround:
            add('<fact kind="workaround">none: there is no workaround (recorded)</fact>')
        else:
            add(f'<fact kind="{kind}">not recorded</fact>')
    began_from = {
        "since": "as given",
        "text": "the time written in the impact fact",
        "declared": "the declaration: nobody said",
    }.get(said.began_from, "")
    add(f"impact_began: {_when(said.impact_began, 'not recorded')} ({began_from})")
    if said.stated_began is not None:
        add(f"impact_began_disputed: the fact's text says {iso_utc(said.stated_began)}")
    add(f"impact_ended: {_when(said.impact_ended, 'not recorded')}")
    prevention = [a for a in g.action_items if a.prevention]
    for item in prevention:
        add(f'<prevention id="{_attr(item.id)}">{one_line(item.text)}</prevention>')
    add("</customer_facts>")

    if g.told:
        add('<customer_conversation note="what each approved letter told the customer">')
        for n, told in enumerate(g.told, start=1):
            parts = [f'n="{n}" at="{iso_utc(told.at)}"']
            if told.promised is not None:
                parts.append(f'promised_next="{iso_utc(told.promised)}"')
            parts.append(
                f'impact_ended="{iso_utc(told.impact_ended)}"'
                if told.impact_ended
                else 'impact_ended="no"'
            )
            body = "; ".join(
                f"{k}: {one_line(v)}"
                for k, v in (
                    ("impact", told.impact),
                    ("workaround", told.workaround),
                    ("eta", told.eta),
                    ("cause", told.cause),
                    ("fixed", told.fixed),
                )
                if v
            )
            if told.left_out:
                body += f"; removed by the approver: {', '.join(told.left_out)}"
            add(f"<letter {' '.join(parts)}>{body}</letter>")
        add("</customer_conversation>")

    add("<protocol_steps>")
    for step in g.steps:
        add(_step_line(step, g))
    add("</protocol_steps>")

    add("<action_items>")
    for item in g.action_items:
        due = f' due="{iso_utc(item.due_at)}"' if item.due_at else ""
        add(
            f'<item id="{_attr(item.id)}" owner="{_attr(item.owner)}"{due} '
            f'done="{"yes" if item.done else "no"}">{one_line(item.text)}</item>'
        )
    add("</action_items>")

    if g.customer_replies:
        add(
            '<customer_replies note="what the customer said and asked us, their own words: '
            'the letter answers what they asked, in our words; never quote them back">'
        )
        answered = {r.id for r in g.customer_replies} - {r.id for r in g.unanswered_replies()}
        for reply in sorted(g.customer_replies, key=lambda r: r.at):
            state = "answered by a letter since" if reply.id in answered else "to answer"
            add(
                f'<reply id="{_attr(reply.id)}" at="{iso_utc(reply.at)}" '
                f'by="{_attr(reply.who)}" organisation="{_attr(reply.organisation)}" '
                f'via="{_attr(reply.via)}" state="{state}">{one_line(reply.text)}</reply>'
            )
        add("</customer_replies>")

    add('<internal_record note="for the war room: translate, never quote, to a customer">')
    add(f"<summary>{one_line(g.summary)}</summary>")
    notes = g.customer_facts.get("notes")
    if _present(notes):
        add(f"<account_notes>{_fact_value(notes)}</account_notes>")
    if g.resolution:
        add(f"<resolution>{one_line(g.resolution)}</resolution>")
    add("<suspected_causes>")
    for cause in said.suspected_causes:
        add(_fact_line("suspected_cause", cause, tag="cause"))
    add("</suspected_causes>")
    add("<timeline>")
    # A customer fact is given once, above, as a fact to use: its own entry points there.
    recorded = {f.id for f in said.said() if f.id}
    replies = {r.id for r in g.customer_replies if r.id}
    for entry in sorted(g.timeline, key=lambda e: e.at):
        actor = _attr(entry.actor) if entry.actor else "the bot"
        text = (
            f"(the customer fact {entry.id}, above)"
            if entry.id in recorded
            else f"(the customer's reply {entry.id}, above)"
            if entry.id in replies
            else one_line(entry.text)
        )
        add(
            f'<entry id="{_attr(entry.id)}" at="{iso_utc(entry.at)}" kind="{_attr(entry.kind)}" '
            f'actor="{actor}">{text}</entry>'
        )
    add("</timeline>")
    add("<room_messages>")
    for message in sorted(g.room_messages, key=lambda m: m.at):
        add(
            f'<message id="{_attr(message.id)}" at="{iso_utc(message.at)}" '
            f'by="{_attr(message.by)}">{one_line(message.text)}</message>'
        )
    add("</room_messages>")
    others = "; ".join(one_line(c) for c in g.other_customers) or "none recorded"
    add(f"<other_customers>{others}</other_customers>")
    add("</internal_record>")

    if g.approved_updates:
        add("<approved_customer_updates>")
        for n, text in enumerate(g.approved_updates, start=1):
            add(f'<update n="{n}">{one_line(text)}</update>')
        add("</approved_customer_updates>")
    add("</escalation_facts>")
    return "\n".join(lines)


def _fact_line(kind: str, fact: Fact, *, tag: str = "fact") -> str:
    return (
        f'<{tag} id="{_attr(fact.id)}" kind="{kind}" by="{_attr(fact.by)}" '
        f'at="{iso_utc(fact.at)}">{one_line(fact.text)}</{tag}>'
    )


def _step_line(step: StepView, g: Grounding) -> str:
    if step.done_at is not None:
        by = f" by {_attr(step.done_by)}" if step.done_by else ""
        state = f"done at {iso_utc(step.done_at)}{by}"
    elif step.overdue(g.now):
        state = "OVERDUE, not done"
    else:
        state = "open"
    due = iso_utc(step.due_at) if step.due_at else "no fixed deadline"
    return f'<step id="{_attr(step.id)}" due="{due}" state="{state}">{one_line(step.title)}</step>'


def _span(g: Grounding, value: Any) -> str:
    return assessment.span(g, value)


def _when(at: Any, missing: str) -> str:
    return iso_utc(at) if at is not None else missing


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _fact_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "; ".join(one_line(str(v)) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{one_line(str(k))}={one_line(str(v))}" for k, v in value.items())
    return one_line(str(value))


def _attr(text: str | None) -> str:
    return one_line(text or "").replace('"', "”")
