"""The offline drafter's post-incident review: the record read as a whole (`agents.assessment`)
written into the review's sections (`agents.review`) when the model is unavailable.

The review is for the company, so it may quote the internal record (one line each, escaped);
it invents nothing. Impact comes from the impact facts, action items from the ones people
took on, prevention from those action items (never a restatement of the cause), compensation
from the account's SLA and credit terms; a drill is reviewed in drill time throughout. It has
no title of its own: the bot shows one above it.
"""

from __future__ import annotations

import re
from typing import Any

from agents import assessment
from agents.assessment import drill_note, span, when
from agents.checks import placeholder
from agents.grounding import Grounding, TimelineEntry, format_arr, one_line
from agents.review import empty_review, render_review

NOTE = (
    "_Draft: the model is unavailable, so this was drafted offline from the escalation record. "
    "Check every line before sharing it._"
)

# Action items that keep the problem from coming back, by what they say.
_PREVENTIVE = re.compile(
    r"(?<!\w)(?:prevent\w*|alert\w*|monitor\w*|test\w*|guard\w*|safeguard\w*|automat\w*|"
    r"validat\w*|check\w*|canary|canaries|rollback|roll back|limit\w*|rate-limit\w*|"
    r"runbook\w*|drill\w*|rehears\w*|redundan\w*|failover|backup\w*|review\w* (?:of|the) "
    r"(?:config|change)\w*|lint\w*|audit\w*)(?!\w)",
    re.IGNORECASE,
)
# How someone announces a cause in an update ("Root cause: ...").
_ROOT_CAUSE_SAID = re.compile(r"\broot[ \t-]*cause\s*(?:is|was|:)", re.IGNORECASE)

CLIP = 200


def offline_review(g: Grounding) -> str:
    """The post-incident review as Markdown with exactly the REVIEW_SECTIONS headings."""
    return render_review(offline_review_data(g), note=NOTE)


def offline_review_data(g: Grounding) -> dict[str, Any]:
    """The review as the dict `parse_review` returns, filled from the record only."""
    review = empty_review()
    review["summary"] = _summary(g)
    review["customer_impact"] = _impact(g)
    review["timeline"] = [_timeline_bullet(g, e) for e in sorted(g.timeline, key=lambda e: e.at)]
    review["root_cause"] = _root_cause(g)
    review["contributing_factors"] = _factors(g)
    review["went_well"] = _went_well(g)
    review["went_badly"] = _went_badly(g)
    review["action_items"] = _actions(g)
    review["prevention"] = _prevention(g)
    review["lessons"] = assessment.helped(g) + assessment.slowed(g)
    review["compensation"] = assessment.compensation(g)
    return review


def _summary(g: Grounding) -> str:
    if g.resolved_at is not None:
        state = f"resolved {span(g, g.elapsed())} after the declaration"
    else:
        state = f"{g.status}, {span(g, g.elapsed())} after the declaration"
    parts = [drill_note(g)] if drill_note(g) else []
    parts.append(f"{one_line(g.customer)}: {_sentence(g.summary)}")
    parts.append(
        f"Declared {when(g, g.declared_at)} by {one_line(g.declarer)}; incident commander "
        f"{one_line(g.ic)}; {state}."
    )
    if g.criteria:
        parts.append(f"Criteria: {'; '.join(one_line(c) for c in g.criteria)}.")
    if g.resolution:
        parts.append(f"Resolution: {_sentence(g.resolution)}")
    return " ".join(parts)


def _impact(g: Grounding) -> str:
    found = assessment.impact(g)
    fact = g.facts.impact
    parts = []
    if fact is not None:
        parts.append(f"What the customer experienced: {_cited(fact.text, fact.id)}")
    else:
        parts.append(
            "What the customer experienced: "
            + placeholder("impact", "record it with @vp impact <text>")
            + "."
        )
    if found.began is not None and found.span is not None:
        end = (
            f"ended {when(g, found.ended)}"
            if found.ended is not None
            else f"lasted until the resolution, {when(g, found.until)}"
            if g.resolved_at is not None
            else "is still going on"
        )
        parts.append(
            f"It began {when(g, found.began)} and {end}: {span(g, found.span)} of impact"
            + (" so far." if found.ended is None and g.resolved_at is None else ".")
        )
    else:
        parts.append(
            f"When the impact began is not recorded; the escalation was declared "
            f"{when(g, g.declared_at)}, {span(g, g.elapsed())} before "
            + ("its resolution." if g.resolved_at is not None else "now.")
        )
    if found.measures:
        parts.append("Measures recorded: " + "; ".join(found.measures) + ".")
    account = []
    arr = g.account_arr()
    if arr is not None:
        account.append(f"ARR {format_arr(arr)}")
    tier = g.customer_facts.get("tier")
    if tier:
        account.append(f"tier {one_line(str(tier))}")
    if account:
        parts.append(f"Account: {', '.join(account)}.")
    parts.append(f"Customer updates approved: {len(g.approved_updates)}.")
    return " ".join(parts)


def _root_cause(g: Grounding) -> str:
    cause = g.facts.cause
    if cause is not None:
        return _cited(cause.text, cause.id)
    suspected = g.facts.suspected_causes
    said = [_cited(f.text, f.id or f.by) for f in suspected]
    # Someone's "Root cause: ..." in an update is a claim on the record, not a confirmation.
    said += [
        _cited(e.text, e.id or when(g, e.at))
        for e in g.timeline
        if _ROOT_CAUSE_SAID.search(e.text) and (not e.id or e.id not in {f.id for f in suspected})
    ]
    if said:
        return "Not yet confirmed. Recorded but not confirmed: " + " ".join(said)
    return "Not yet known"


def _factors(g: Grounding) -> list[str]:
    confirmed = g.facts.cause
    label = "Considered, not confirmed" if confirmed else "Suspected, not confirmed"
    out = [
        f"{label}: {_clip(one_line(s.text))} ({', '.join(x for x in (s.id, s.by) if x)})"
        for s in g.facts.suspected_causes
        if confirmed is None or s.text != confirmed.text
    ]
    lag = assessment.detection_lag(g)
    if lag is not None:
        out.append(
            f"The impact ran {span(g, lag)} before the escalation was declared, which "
            "lengthened it."
        )
    return out


def _went_well(g: Grounding) -> list[str]:
    out = [
        f"{one_line(s.title)}: done {when(g, s.done_at)}, on time (due {when(g, s.due_at)})."
        for s in assessment.on_time(g)
        if s.done_at and s.due_at
    ]
    if g.approved_updates:
        out.append(f"{len(g.approved_updates)} customer update(s) approved and recorded.")
    if g.facts.workaround is not None:
        out.append(f"A workaround was recorded for the customer {when(g, g.facts.workaround.at)}.")
    return out


def _went_badly(g: Grounding) -> list[str]:
    out = [
        f"{one_line(s.title)}: done {when(g, s.done_at)}, {span(g, s.done_at - s.due_at)} late "
        f"(due {when(g, s.due_at)})."
        for s in assessment.late(g)
        if s.done_at and s.due_at
    ]
    out += [
        f"{one_line(s.title)}: overdue, due {when(g, s.due_at)}, not done."
        for s in g.overdue_steps()
        if s.due_at is not None
    ]
    if assessment.nudges(g):
        out.append(f"Status updates ran late: {assessment.nudges(g)} update nudge(s) were needed.")
    if g.facts.impact is None:
        out.append("The customer's impact was never recorded for them.")
    return out


def _actions(g: Grounding) -> list[dict[str, str]]:
    if not g.action_items:
        return [
            {
                "owner": "",
                "action": placeholder("action items", "record each with @vp action @owner <text>"),
            }
        ]
    items = []
    for a in g.action_items:
        extra = []
        if a.due_at is not None:
            extra.append(f"due {when(g, a.due_at)}")
        if a.done:
            extra.append("done")
        tail = f" ({', '.join(extra)})" if extra else ""
        items.append({"owner": one_line(a.owner), "action": f"{one_line(a.text)}{tail}"})
    return items


def _prevention(g: Grounding) -> list[str]:
    cause = g.root_cause()
    out = [
        f"{one_line(a.text)} (owner {one_line(a.owner)})"
        for a in g.action_items
        if _PREVENTIVE.search(a.text) and (cause is None or a.text.strip() != cause.strip())
    ]
    return out or [
        placeholder(
            "prevention",
            "what will keep this from happening again? record it as an action item with an owner",
        )
    ]


def _timeline_bullet(g: Grounding, entry: TimelineEntry) -> str:
    actor = f" ({one_line(entry.actor)})" if entry.actor else ""
    text = _clip(one_line(entry.text))
    ident = f" ({entry.id})" if entry.id else ""
    return f"{when(g, entry.at)} {one_line(entry.kind)}{actor}{ident}" + (
        f": {text}" if text else ""
    )


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else text[: CLIP - 1].rstrip() + "…"


def _cited(text: str, where: str) -> str:
    text = _clip(one_line(text)).rstrip(".")
    return f"{text} ({where})." if where else f"{text}."


def _sentence(text: str) -> str:
    text = _clip(one_line(text))
    return text if not text or text[-1] in ".!?" else f"{text}."
