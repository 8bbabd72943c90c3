"""The offline drafter: customer updates, post-incident reviews and answers built from
templates when the model is unavailable (no key, timeout, rate limit, server error).

It reads the same `Grounding` as the prompts and writes nothing that is not in it: no causes,
no estimates, no names beyond those on record. People's text is quoted, never acted on, and
disarmed so a quoted `<!channel>` cannot ping anyone.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from agents.grounding import (
    Grounding,
    StepView,
    TimelineEntry,
    escape_text,
    format_arr,
    human_utc,
    short_utc,
)
from agents.review import empty_review, render_review
from protocols.durations import human_duration

# How a status update announces a cause: "Root cause: ..." (any case, "root-cause"). Such an
# update is someone's view, not a confirmed cause: never quoted to a customer.
ROOT_CAUSE_PREFIX = re.compile(r"\s*root[ \t-]*cause\s*:\s*", re.IGNORECASE)

# The stated compensation rule (prompts.COMPENSATION_RULE says the same to the model).
CREDIT_ARR_THRESHOLD = 100_000
CREDIT_DURATION_THRESHOLD = timedelta(hours=4)

# How many recent status updates a customer update repeats.
RECENT_UPDATES = 3

OFFLINE_NOTE = "the model is unavailable, so this was drafted offline from the escalation record"

# Timeline kinds written by the bot: an approved customer update, a status-update nudge.
CUSTOMER_UPDATE = "customer_update"
NUDGE = "nudge"

# Long texts (an approved customer update) are clipped in review bullets and answers.
CLIP = 160

_MENTION = re.compile(r"<[@#][A-Z0-9]+(?:\|[^<>\n]*)?>")


# --- customer update -------------------------------------------------------------------------


_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def offline_customer_update(g: Grounding) -> str:
    """A customer update from the record, addressed to the executive contact when known."""
    contact = g.executive_contact()
    # "Dana Whitfield, CTO" -> "Dana Whitfield": the title is for our records, not the greeting.
    name = _customer_text(contact.split(",")[0]).strip() if contact else ""
    greeting = f"Dear {name}," if name else "Hello,"
    customer = _customer_text(g.customer)
    promised = human_utc(g.promised_next_update())
    root_cause = g.root_cause()
    paragraphs = [greeting]

    if g.resolved:
        when = f" as of {human_utc(g.resolved_at)}" if g.resolved_at else ""
        paragraphs.append(
            f"I'm writing to let you know that the issue affecting {customer} has been "
            f"resolved{when}. I'm sorry for the disruption it caused your team, and thank you "
            "for your patience while we worked on it."
        )
        known = [f"The issue: {_sentence(_customer_text(g.summary))}"]
        if g.resolution:
            known.append(f"What we did: {_sentence(_customer_text(g.resolution))}")
        if root_cause:
            known.append(f"The cause we identified: {_sentence(_customer_text(root_cause))}")
        paragraphs.append("\n".join(f"- {line}" for line in known))
        paragraphs.append(
            f"We will check in with you by {promised} to confirm that everything is working as "
            "it should. If anything looks wrong before then, please tell us right away."
        )
    else:
        paragraphs.append(
            f"I'm writing about the issue currently affecting {customer}. I'm sorry for the "
            "impact this is having on your team; resolving it is our top priority."
        )
        known = [_sentence(_customer_text(g.summary))]
        previous, new = _updates_since_last_customer_update(g)
        known += [_sentence(_customer_text(e.text)) for e in new[-RECENT_UPDATES:]]
        if previous and not new:
            known.append("We have no new findings to share since our last update.")
        if root_cause:
            known.append(f"We have identified the cause: {_sentence(_customer_text(root_cause))}")
        paragraphs.append("What we know:\n" + "\n".join(f"- {line}" for line in known if line))
        if not root_cause:
            paragraphs.append(
                "What we don't know yet: we have not yet confirmed the underlying cause, and we "
                "will not guess at it before we have."
            )
        paragraphs.append(
            "What we're doing: a dedicated incident team is working on this now, and it has "
            "the attention of our support leadership."
        )
        paragraphs.append(
            f"We will send you our next update by {promised}, sooner if anything changes. If "
            "you would like to talk before then, just reply to this message."
        )
    paragraphs.append("Sincerely,\nThe Customer Support leadership team")
    return "\n\n".join(paragraphs) + "\n"


def _updates_since_last_customer_update(g: Grounding) -> tuple[bool, list[TimelineEntry]]:
    """Whether the timeline records an earlier customer update, and the status updates since
    (all of them when there was none). Root-cause updates are said separately."""
    sent = [e.at for e in g.timeline if e.kind == CUSTOMER_UPDATE]
    entries = [e for e in g.updates() if e.text.strip() and not ROOT_CAUSE_PREFIX.match(e.text)]
    if sent:
        entries = [e for e in entries if e.at > max(sent)]
    return bool(sent), entries


def _customer_text(text: str) -> str:
    # Slack mentions name our staff and mean nothing to a customer: they read "our team".
    return escape_text(_MENTION.sub("our team", " ".join(text.split())))


# --- post-incident review --------------------------------------------------------------------


def offline_review(g: Grounding) -> str:
    """The post-incident review as Markdown with exactly the REVIEW_SECTIONS headings."""
    return render_review(
        offline_review_data(g),
        title=f"Post-incident review: {g.customer} ({g.escalation_id})",
        note=f"_Draft: {OFFLINE_NOTE}. Check every line before sharing it._",
    )


def offline_review_data(g: Grounding) -> dict[str, Any]:
    """The review as the dict `parse_review` returns, filled from the record only."""
    review = empty_review()
    root_cause = g.root_cause()
    arr = g.account_arr()
    tier = g.customer_facts.get("tier")
    late = [s for s in g.steps if _late(s)]
    overdue = list(g.overdue_steps())

    state = (
        f"resolved at {short_utc(g.resolved_at)} after {human_duration(g.elapsed())}"
        if g.resolved_at is not None
        else f"{g.status}, {human_duration(g.elapsed())} after declaration"
    )
    summary = [
        f"{_text(g.customer)}: {_sentence(g.summary)}",
        f"Declared {short_utc(g.declared_at)} by {_text(g.declarer)}; incident commander "
        f"{_text(g.ic)}; {state}.",
    ]
    if g.criteria:
        summary.append(f"Criteria: {'; '.join(_text(c) for c in g.criteria)}.")
    if g.resolution:
        summary.append(f"Resolution: {_sentence(g.resolution)}")
    review["summary"] = " ".join(summary)

    impact = [f"{_text(g.customer)} was affected for {human_duration(g.elapsed())}"]
    impact[0] += " until resolution." if g.resolved_at is not None else " so far (unresolved)."
    account = []
    if arr is not None:
        account.append(f"ARR {format_arr(arr)}")
    if tier:
        account.append(f"tier {_text(str(tier))}")
    if account:
        impact.append(f"Account: {', '.join(account)}.")
    impact.append(
        f"Customer updates approved: {len(g.approved_updates)}. "
        "Impact beyond the summary is not recorded."
    )
    review["customer_impact"] = " ".join(impact)

    review["timeline"] = [_timeline_bullet(e) for e in sorted(g.timeline, key=lambda e: e.at)]
    review["root_cause"] = _text(root_cause) if root_cause else "Not yet known"

    went_well = [
        f"{_text(s.title)}: done {short_utc(s.done_at)}, on time (due {short_utc(s.due_at)})."
        for s in g.steps
        if s.done_at is not None and s.due_at is not None and s.done_at <= s.due_at
    ]
    if g.approved_updates:
        went_well.append(f"{len(g.approved_updates)} customer update(s) approved and recorded.")
    review["went_well"] = went_well

    went_badly = [
        f"{_text(s.title)}: done {short_utc(s.done_at)}, "
        f"{human_duration(s.done_at - s.due_at)} late (due {short_utc(s.due_at)})."
        for s in late
        if s.done_at is not None and s.due_at is not None
    ]
    went_badly += [
        f"{_text(s.title)}: overdue, due {short_utc(s.due_at)}, not done."
        for s in overdue
        if s.due_at is not None
    ]
    nudges = sum(1 for e in g.timeline if e.kind == NUDGE)
    if nudges:
        went_badly.append(f"Status updates ran late: {nudges} update nudge(s) were needed.")
    review["went_badly"] = went_badly

    owner = _text(g.ic)
    actions = [
        {
            "owner": owner,
            "action": "confirm root cause and preventive fix"
            if root_cause is None
            else "confirm the preventive fix for the recorded root cause",
        }
    ]
    actions += [
        {"owner": owner, "action": f"complete overdue step: {_text(s.title)}"} for s in overdue
    ]
    csm = g.customer_facts.get("csm")
    actions.append(
        {
            # the account file names the CSM by Slack id: shown as a mention, like the IC
            "owner": (f"<@{csm}>" if _SLACK_USER.fullmatch(str(csm)) else _text(str(csm)))
            if csm
            else owner,
            "action": "confirm the customer is satisfied, 24-48 h after resolution",
        }
    )
    actions.append({"owner": owner, "action": "hold the post-incident review and record lessons"})
    review["action_items"] = actions

    review["prevention"] = (
        [f"Put a safeguard in place against the recorded root cause: {_text(root_cause)}"]
        if root_cause
        else []
    )
    review["lessons"] = [
        f'The deadline of "{_text(s.title)}" was missed: find out what held it up.'
        for s in [*late, *overdue]
    ]
    review["compensation"] = compensation_recommendation(g)
    return review


def compensation_recommendation(g: Grounding) -> str:
    """The stated rule: ARR of $100K or more and more than 4 h to resolve -> recommend
    considering a service credit; otherwise none by default."""
    arr = g.account_arr()
    span = g.elapsed()
    rule = (
        f"(rule: ARR of {format_arr(CREDIT_ARR_THRESHOLD)} or more and more than "
        f"{human_duration(CREDIT_DURATION_THRESHOLD)} to resolve)"
    )
    long_enough = span > CREDIT_DURATION_THRESHOLD
    if arr is not None and arr >= CREDIT_ARR_THRESHOLD and long_enough:
        took = (
            f"took {human_duration(span)} to resolve"
            if g.resolved_at is not None
            else f"has been open {human_duration(span)} and is not yet resolved"
        )
        return (
            f"Recommend considering a service credit: the account's ARR is {format_arr(arr)} and "
            f"the issue {took} {rule}. Agree the form and amount with the account team."
        )
    if arr is None:
        why = "no ARR is on record"
    elif arr < CREDIT_ARR_THRESHOLD:
        why = f"the account's ARR, {format_arr(arr)}, is below the threshold"
    elif g.resolved_at is not None:
        why = f"it was resolved in {human_duration(span)}"
    else:
        why = f"it has been open {human_duration(span)} so far; revisit at resolution"
    return f"No compensation recommended by default: {why} {rule}."


def _timeline_bullet(entry: TimelineEntry) -> str:
    actor = f" ({_text(entry.actor)})" if entry.actor else ""
    text = _clip(_text(entry.text))
    return f"{short_utc(entry.at)} {_text(entry.kind)}{actor}" + (f": {text}" if text else "")


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else text[: CLIP - 1].rstrip() + "…"


def _late(step: StepView) -> bool:
    return step.done_at is not None and step.due_at is not None and step.done_at > step.due_at


def _text(text: str | None) -> str:
    # One line, disarmed: review bullets are single lines and may be posted to Slack.
    return escape_text(" ".join((text or "").split()))


def _sentence(text: str) -> str:
    text = _text(text)
    return text if not text or text[-1] in ".!?" else f"{text}."


# --- answers ---------------------------------------------------------------------------------


def offline_answer(g: Grounding, question: str) -> str:
    """A short summary of the facts in place of an answer. The question is neither answered
    nor echoed: without the model there is nothing to interpret it with."""
    del question  # deliberately unused, see above
    lines = [f"_The model is unavailable, so here is a summary of the facts instead ({g.status})._"]
    if g.resolved_at is not None:
        lines.append(
            f"Resolved {short_utc(g.resolved_at)}, {human_duration(g.elapsed())} after it was "
            f"declared; incident commander {_text(g.ic)}."
        )
    else:
        lines.append(
            f"Open for {human_duration(g.elapsed())} (declared {short_utc(g.declared_at)}); "
            f"incident commander {_text(g.ic)}."
        )
    done = sum(1 for s in g.steps if s.done_at is not None)
    lines.append(f"Steps done: {done} of {len(g.steps)}.")
    overdue = g.overdue_steps()
    if overdue:
        lines.append(
            "Overdue: "
            + "; ".join(
                f"{_text(s.title)} (due {short_utc(s.due_at)})" for s in overdue if s.due_at
            )
            + "."
        )
    upcoming = sorted(
        (s for s in g.steps if s.done_at is None and s.due_at is not None and s.due_at > g.now),
        key=lambda s: s.due_at or g.now,
    )
    if upcoming and upcoming[0].due_at is not None:
        nxt = upcoming[0]
        lines.append(
            f"Next deadline: {_text(nxt.title)} at {short_utc(nxt.due_at)} "
            f"(in {human_duration(nxt.due_at - g.now)})."
        )
    # The last update is a status update or an approved customer update, whichever is later.
    updates = sorted(
        (e for e in g.timeline if e.kind in ("update", CUSTOMER_UPDATE)), key=lambda e: e.at
    )
    if updates:
        last = updates[-1]
        what = "customer update approved" if last.kind == CUSTOMER_UPDATE else "status update"
        lines.append(
            f"Last update: {short_utc(last.at)} ({human_duration(g.now - last.at)} ago), "
            f'{what}: "{_clip(_text(last.text))}".'
        )
    elif g.last_update_at is not None:
        lines.append(
            f"Last update: {short_utc(g.last_update_at)} "
            f"({human_duration(g.now - g.last_update_at)} ago)."
        )
    else:
        lines.append("Last update: none recorded.")
    if g.next_update_due is not None and g.resolved_at is None:
        lines.append(f"Next update due: {short_utc(g.next_update_due)}.")
    root_cause = g.root_cause()
    lines.append(f"Root cause: {_text(root_cause) if root_cause else 'not yet known'}.")
    return "\n".join(lines)
