"""The offline drafter's post-incident review: the record read as a whole (`agents.assessment`)
written into the review's sections (`agents.review`) when the model is unavailable.

The review is for the company, so it may quote the internal record (one line each, escaped);
it invents nothing. Impact comes from the impact facts; the timeline is the key moments, not
the bot's reminders; a confirmed cause is the root cause and nowhere "not confirmed";
contributing factors and lessons come from what happened (time to declare, slipped ETAs,
promises missed, what sped things up); the customer-communication section gives the letters,
the times they promised and whether those were kept, and the customer's asks; action items
are the ones people took on, prevention comes from them (never a restatement of the cause);
compensation follows the account's contract terms (`agents.credits`). A drill is reviewed in
drill time throughout. It has no title of its own: the bot shows one above it.
"""

from __future__ import annotations

import re
from typing import Any

from agents import assessment
from agents.assessment import drill_note, span, when
from agents.checks import placeholder
from agents.grounding import Grounding, format_arr, one_line
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
    review["timeline"] = [_moment_bullet(g, m) for m in assessment.key_moments(g)]
    review["root_cause"] = _root_cause(g)
    review["contributing_factors"] = _factors(g)
    review["went_well"] = _went_well(g)
    review["went_badly"] = _went_badly(g)
    review["customer_communication"] = _communication(g)
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
    if confirmed is None:
        out = [
            f"Suspected, not confirmed: {_clip(one_line(c.text))} ({_who(c.id, c.by)})"
            for c in g.facts.suspected_causes
        ]
    else:
        # A suspicion that says what was then confirmed is the cause, not a factor; the
        # others were leads the team set aside when the cause was confirmed.
        out = [
            f"Also suspected, set aside when the cause was confirmed: {_clip(one_line(c.text))} "
            f"({_who(c.id, c.by)})"
            for c in g.facts.suspected_causes
            if not assessment.same_cause(c.text, confirmed.text)
        ]
    return out + assessment.factors(g)


def _who(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


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
    made = assessment.promises(g)
    if made and all(p.kept is not False for p in made) and any(p.kept for p in made):
        out.append("Every update time promised to the customer was kept.")
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
    missed = [p for p in assessment.promises(g) if p.kept is False]
    if missed:
        out.append(
            f"{len(missed)} update time(s) promised to the customer were missed (see Customer "
            "communication)."
        )
    etas = assessment.eta_history(g)
    if len(etas) > 1:
        out.append(f"The ETA given to the customer moved {len(etas) - 1} time(s).")
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


def _moment_bullet(g: Grounding, moment: assessment.Moment) -> str:
    ref = f" ({moment.ref})" if moment.ref else ""
    return f"{when(g, moment.at)} {moment.what}{ref}"


def _communication(g: Grounding) -> list[str]:
    """Letters, the promises they made and whether they were kept, the customer's asks and
    whether a letter answered them."""
    out: list[str] = []
    sent = assessment.letters(g)
    count = len(sent) or len(g.approved_updates)
    if not count:
        out.append("No letter to the customer was approved.")
    else:
        first = sent[0] if sent else None
        lead = (
            f", the first {span(g, first.at - g.declared_at)} after the declaration"
            if first is not None
            else ""
        )
        late = " (after the protocol's deadline)" if g.first_contact_late() else ""
        out.append(f"Letters approved for the customer: {count}{lead}{late}.")
    made = assessment.promises(g)
    for p in made:
        what = "a check-in" if p.letter.after_resolution else "the next update"
        head = f"Letter {p.letter.n} ({when(g, p.letter.at)}) promised {what} by {when(g, p.due)}"
        if p.kept is True and p.next_at is not None:
            out.append(f"{head}: kept, the next letter came {when(g, p.next_at)}.")
        elif p.kept is False and p.next_at is not None:
            out.append(
                f"{head}: missed, the next letter came {when(g, p.next_at)}, "
                f"{span(g, p.next_at - p.due)} late."
            )
        elif p.kept is False:
            out.append(f"{head}: missed, no letter has followed.")
        elif p.letter.after_resolution:
            out.append(f"{head}: whether it happened is not on the record.")
        else:
            out.append(f"{head}: still ahead.")
    if made:
        kept = sum(p.kept is True for p in made)
        missed = sum(p.kept is False for p in made)
        out.append(f"Promised times: {kept} kept, {missed} missed.")
    elif count:
        out.append("No letter's promised next-update time can be read from the record.")
    for ask in assessment.asks(g):
        said = f"The customer asked: {ask.text} ({ask.ref or when(g, ask.at)})"
        if ask.topic is None:
            out.append(f"{said}. Whether a letter answered it is for a person to check.")
        elif ask.answered_in is not None:
            out.append(
                f"{said}. Letter {ask.answered_in.n} ({when(g, ask.answered_in.at)}) speaks to "
                f"{ask.topic}: check that it answers the ask."
            )
        else:
            out.append(f"{said}. No letter on record answers it ({ask.topic}).")
    if not assessment.asks(g):
        out.append("No ask from the customer is on the record.")
    return out


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else text[: CLIP - 1].rstrip() + "…"


def _cited(text: str, where: str) -> str:
    text = _clip(one_line(text)).rstrip(".")
    return f"{text} ({where})." if where else f"{text}."


def _sentence(text: str) -> str:
    text = _clip(one_line(text))
    return text if not text or text[-1] in ".!?" else f"{text}."
