"""The offline drafter's customer letters and war-room answers, written from templates when the
model is unavailable (no key, timeout, rate limit, server error). The review is
`agents.offline_review`.

A letter is written from the customer-facing facts only (`Facts`: impact, workaround, advice,
what we are doing, an ETA, a confirmed cause, what fixed it) in the frame `agents.playbook`
decides: never the summary, a status update, a suspected cause or the room's talk, never
another customer or an internal identifier. It follows the customer conversation: once the
impact ended it says so, in the past tense, with no workaround or fix time; a changed or
passed ETA and a late update are named with an apology; a line the approver removed stays
out while its fact is unchanged. A fact that is missing leaves a placeholder saying what to
record; the bot refuses to approve a draft while one remains.
"""

from __future__ import annotations

import re

from agents.checks import names_in, placeholder, redact_ids
from agents.grounding import (
    Fact,
    Grounding,
    escape_text,
    format_arr,
    one_line,
    short_utc,
)
from agents.playbook import MISSING, Frame, frame, past, subject, without_start
from protocols.durations import human_duration

OFFLINE_NOTE = "the model is unavailable, so this was drafted offline from the escalation record"

# Timeline kind of an approved customer update (written by the bot).
CUSTOMER_UPDATE = "customer_update"

# Long texts are clipped in answers.
CLIP = 160

_MENTION = re.compile(r"<[@#][A-Z0-9]+(?:\|[^<>\n]*)?>|(?<![\w@])@[\w.-]+")
_REMOVED = placeholder("check", "an internal reference was removed here, rephrase it")


# --- customer letters ------------------------------------------------------------------------


def offline_customer_update(g: Grounding) -> str:
    """The letter the situation calls for: an update, or the resolution notice."""
    f = frame(g)
    parts = [f"Subject: {subject(g, f)}", f.greeting]
    if f.first_contact_late:
        parts.append(_late_apology(g, f))
    parts += _resolution(g, f) if f.resolved else _update(g, f)
    parts.append(f"Kind regards,\n{f.signature}")
    return "\n\n".join(parts) + "\n"


def _late_apology(g: Grounding, f: Frame) -> str:
    we = "I" if f.personal else "We"
    if g.first_contact_done_at is not None:
        return (
            f"{we} also owe you an apology: our first message to you about this came later "
            "than it should have. I am sorry for that delay."
            if f.personal
            else "We also owe you an apology: our first message to you about this came later "
            "than it should have. We are sorry for that delay."
        )
    return (
        f"Before anything else, {'I' if f.personal else 'we'} owe you an apology: you should "
        "have heard from us within an hour of this starting, and you did not. "
        f"{'I am' if f.personal else 'We are'} sorry for that delay."
    )


def _opening(g: Grounding, f: Frame, what: str) -> str:
    customer = say(g, g.customer)
    ended = f.conversation.ended is not None
    if f.regulatory and not f.security:
        # A written notice: what happened to their data and what they may need to do, in
        # the words of a record, not of an outage ("disruption", "patience").
        we = "I am" if f.personal else "We are"
        status = " It is no longer affecting your data." if ended else ""
        return (
            f"{we} writing to give you written notice of an incident affecting data that "
            f"{customer} holds with us, with what we know so far and what you may need to do "
            f"for your own obligations.{status}"
        )
    if f.personal:
        if ended:
            return (
                f"I am writing to you personally about the {what} affecting {customer}. The "
                "impact on your team has ended, and I am sorry for the disruption it caused. I "
                "am following it myself until it is fully resolved."
            )
        return (
            f"I am writing to you personally about the {what} affecting {customer}. I know how "
            "much your team relies on us, and I am sorry for the disruption this is causing. I "
            "am following it myself until it is resolved."
        )
    if ended:
        return (
            f"We are writing with an update on the {what} affecting {customer}: the impact on "
            "your team has ended. We are sorry for the disruption it caused."
        )
    return (
        f"We are writing about the {what} affecting {customer}. We are sorry for the "
        "disruption this is causing your team; resolving it is our priority."
    )


def _owned(g: Grounding, f: Frame) -> list[str]:
    """A promise we did not keep, named with an apology: the update later than promised, the
    ETA that changed or passed."""
    c = f.conversation
    we = "I am" if f.personal else "We are"
    out = []
    if c.promise_missed is not None:
        out.append(
            f"Our last update promised you the next one by {f.time(c.promise_missed)}, and "
            f"this one comes later than that. {we} sorry: you should not have had to wait."
        )
    if c.eta_before:
        before = _clause(say(g, c.eta_before))
        if c.eta_changed and g.facts.eta is not None and not c.eta_stale:
            new = _clause(say(g, g.facts.eta.text))
            out.append(
                f"Our last update told you to expect a fix {before}. That estimate has "
                f"changed, and {we.lower()} sorry: we now expect the fix {new}."
            )
        elif c.ended is not None or g.resolved:
            out.append(
                f"Our last update told you to expect a fix {before}; the fix came later than "
                f"that, and {we.lower()} sorry."
            )
        else:
            out.append(
                f"Our last update told you to expect a fix {before}. That time has passed "
                f"without a fix, and {we.lower()} sorry. We cannot yet give you a new time "
                "we can stand behind; you will have one as soon as we can."
            )
    return out


def _impact_line(g: Grounding, f: Frame) -> str:
    facts = g.facts
    if facts.impact is None:
        return f"What you are seeing: {MISSING['impact']}"
    text = say(g, without_start(facts.impact.text) or facts.impact.text)
    began = facts.impact_began
    if f.conversation.ended is not None:
        span = (
            f" This began {f.time(began)} and ended {f.time(f.conversation.ended)}."
            if began
            else f" This ended {f.time(f.conversation.ended)}."
        )
        return f"What you experienced: {_sentence(past(text))}{span}"
    start = f" This began {f.time(began)}." if began else ""
    return f"What you are seeing: {_sentence(text)}{start}"


def _update(g: Grounding, f: Frame) -> list[str]:
    facts = g.facts
    c = f.conversation
    what = "security incident" if f.security else "service issue"
    parts = [_opening(g, f, what)]
    parts += _owned(g, f)
    since = _since_last_letter(g, f)
    if since:
        parts.append(since)
    heard = _heard(g, f)
    if heard:
        parts.append(heard)
    ended = c.ended is not None
    lines = [_impact_line(g, f)]
    if f.security:
        lines.append(f"What we recommend you do now: {_advice(g)}")
    elif f.regulatory:
        lines.append(f"What you may need to do: {_obligations(g)}")
    elif facts.advice is not None and "advice" not in c.left_out:
        lines.append(f"What we recommend you do: {_sentence(say(g, facts.advice.text))}")
    if ended or "workaround" in c.left_out:
        pass  # a workaround no longer matters, or the approver took it out
    elif facts.workaround is not None:
        lines.append(f"What you can do meanwhile: {_sentence(say(g, facts.workaround.text))}")
    elif facts.no_workaround:
        lines.append(f"What you can do meanwhile: {NO_WORKAROUND}")
    elif not f.security:
        lines.append(f"What you can do meanwhile: {MISSING['workaround']}")
    if "doing" not in c.left_out:
        lines.append(f"What we are doing: {_fact(g, facts.doing, MISSING['doing'])}")
    lines.append(f"The cause: {_cause(g)}")
    if not ended and "eta" not in c.left_out and not (c.eta_before and not c.eta_changed):
        eta = None if c.eta_stale else facts.eta
        lines.append(f"When to expect a fix: {_fact(g, eta, NO_ETA)}")
    parts.append("\n".join(lines))
    if f.press:
        parts.append(_press(f))
    parts.append(f"You will have our next update by {f.promise}, sooner if anything changes.")
    parts.append(_talk(f))
    return parts


def _obligations(g: Grounding) -> str:
    advice = g.facts.advice
    steps = _sentence(say(g, advice.text)) if advice is not None else MISSING["obligations"]
    return (
        f"{steps} If you need anything from us for a notification of your own, reply to this "
        "message and we will provide it."
    )


def _press(f: Frame) -> str:
    contact = " ".join((f.press_contact or "").split()) or MISSING["press contact"]
    we = "I have" if f.personal else "We have"
    return (
        f"{we} also had questions from the press about this. So that what we each say is "
        "accurate and consistent, please tell us before you make any public statement, and we "
        f"will share ours with you before it is published. {contact} coordinates our "
        "statements."
    )


def _resolution(g: Grounding, f: Frame) -> list[str]:
    facts = g.facts
    customer = say(g, g.customer)
    what = "security incident" if f.security else "service issue"
    when = f" on {f.time(g.resolved_at)}" if g.resolved_at else ""
    if f.regulatory and not f.security:
        we = "I am" if f.personal else "We are"
        opening = (
            f"{we} writing to confirm that the incident affecting data that {customer} holds "
            f"with us was resolved{when}. This notice completes the written record of it."
        )
    elif f.personal:
        opening = (
            f"I wanted to tell you myself that the {what} affecting {customer} was resolved"
            f"{when}. I am sorry for the disruption it caused your team, and grateful for "
            "your patience while we worked on it."
        )
    else:
        opening = (
            f"We are writing to let you know that the {what} affecting {customer} was "
            f"resolved{when}. We are sorry for the disruption it caused your team, and thank "
            "you for your patience while we worked on it."
        )
    lines = []
    if facts.impact is not None:
        text = say(g, without_start(facts.impact.text) or facts.impact.text)
        span = ""
        if facts.impact_began and facts.impact_ended:
            span = f" It lasted from {f.time(facts.impact_began)} to {f.time(facts.impact_ended)}."
        elif facts.impact_began:
            span = f" It began {f.time(facts.impact_began)}."
        lines.append(f"What you experienced: {_sentence(past(text))}{span}")
    else:
        lines.append(f"What you experienced: {MISSING['impact']}")
    lines.append(f"What fixed it: {_fact(g, facts.fixed, MISSING['fix'])}")
    lines.append(f"The cause: {_fact(g, facts.cause, CAUSE_AFTER)}")
    changing = _prevention(g)
    if changing:
        lines.append(f"What we are changing so it does not happen again: {changing}")
    if f.security:
        lines.append(f"What we recommend you do: {_advice(g)}")
    elif f.regulatory:
        lines.append(f"What you may need to do: {_obligations(g)}")
    elif facts.advice is not None and "advice" not in f.conversation.left_out:
        lines.append(f"What we recommend you do: {_sentence(say(g, facts.advice.text))}")
    closing = (
        f"We will check in with you by {f.promise} to confirm that everything is working as "
        "it should. If anything looks wrong before then, reply to this message and we will act "
        "on it straight away."
    )
    # The closing already invites a reply; a personal letter also offers the VP's call.
    press = [_press(f)] if f.press else []
    talk = [_talk(f)] if f.personal else []
    return [opening, *_owned(g, f), "\n".join(lines), *press, closing, *talk]


def _prevention(g: Grounding) -> str:
    """The action items taken on so it does not happen again, as one sentence."""
    items = [_clause(say(g, a.text)) for a in g.action_items if a.prevention]
    if not items:
        return ""
    listed = items[0] if len(items) == 1 else "; ".join(items[:-1]) + f"; and {items[-1]}"
    return _sentence(listed)


def _clause(text: str) -> str:
    """A fact inside a sentence: no full stop of its own."""
    return text.strip().rstrip(".")


def _talk(f: Frame) -> str:
    if f.personal:
        return (
            "I would like to talk this through with you directly. Reply with a time that suits "
            "you and I will call you."
        )
    return "If you would like to talk before then, reply to this message."


def _advice(g: Grounding) -> str:
    advice = g.facts.advice
    steps = _sentence(say(g, advice.text)) if advice is not None else MISSING["advice"]
    return f"{steps} If you notice any activity you do not recognise, tell us straight away."


# What a letter says where a fact is not known yet, without a placeholder: not knowing these
# is itself the truth to tell.
CAUSE_OPEN = "we have not confirmed it yet, and we will tell you as soon as we have."
CAUSE_AFTER = "we are still confirming it, and we will share it with you as soon as we are sure."
NO_WORKAROUND = "there is no workaround for this, so all of our effort is going into the fix."
NO_ETA = (
    "we cannot yet give you a reliable time for the fix; you will have one as soon as we can "
    "stand behind it."
)


def _cause(g: Grounding) -> str:
    return _fact(g, g.facts.cause, CAUSE_OPEN)


def _fact(g: Grounding, fact: Fact | None, missing: str) -> str:
    return _sentence(say(g, fact.text)) if fact is not None else missing


# What changed since the last letter, as nouns that read as one list: "New since our last
# update: the end of the impact and news on what we are doing."
_KINDS = (
    ("impact", "a change in what you are seeing"),
    ("workaround", "a workaround"),
    ("advice", "what we recommend you do"),
    ("doing", "news on what we are doing"),
    ("eta", "an estimate for the fix"),
    ("cause", "the cause"),
    ("fixed", "what fixed it"),
)


def _since_last_letter(g: Grounding, f: Frame) -> str:
    """What changed since the last approved letter, by kind of fact ("" when none went out)."""
    last_told = f.conversation.last
    if last_told is not None:
        at = f" ({f.time(last_told.at)})"
        new = [
            # A fact the last letter already gave is news as its new version.
            ("a new " + label.removeprefix("an ") if getattr(last_told, key) else label)
            if key == "eta"
            else label
            for key, label in _KINDS
            if (x := getattr(g.facts, key)) and x.text != getattr(last_told, key)
        ]
        if f.conversation.ended_is_news:
            new = ["the end of the impact", *(n for n in new if n != _KINDS[0][1])]
        if not new:
            return f"Nothing has changed since our last update{at}; here is where things stand."
        listed = new[0] if len(new) == 1 else ", ".join(new[:-1]) + f" and {new[-1]}"
        return f"New since our last update{at}: {listed}."
    sent = [e.at for e in g.timeline if e.kind == CUSTOMER_UPDATE]
    if not sent and not g.approved_updates:
        return ""
    last = max(sent) if sent else None
    at = f" ({f.time(last)})" if last else ""
    if last is None:
        return "Here is where things stand since our last update."
    new = [label for key, label in _KINDS if (x := getattr(g.facts, key)) and x.at > last]
    if not new:
        return f"Nothing has changed since our last update{at}; here is where things stand."
    listed = new[0] if len(new) == 1 else ", ".join(new[:-1]) + f" and {new[-1]}"
    return f"New since our last update{at}: {listed}."


def _heard(g: Grounding, f: Frame) -> str:
    """The customer wrote to us since the last letter: thanked for, and their question owned,
    without a word of theirs repeated (the letter speaks for us, not for them)."""
    replies = g.unanswered_replies()
    if not replies:
        return ""
    we = "I" if f.personal else "we"
    if any(r.asks for r in replies):
        return (
            f"Thank you for your message. {we.capitalize()} have taken your question to the "
            f"team working on this; what we can answer today is below, and anything {we} "
            "cannot yet answer will be in our next update."
        )
    return f"Thank you for your message; {we} have shared it with the team working on this."


def say(g: Grounding, text: str) -> str:
    """A fact as a letter may say it: one line, escaped, our people as "our team", and never
    an internal identifier or another customer's name (a placeholder asks for a rewrite)."""
    text = _MENTION.sub("our team", " ".join(text.split()))
    text = redact_ids(text, _REMOVED)
    for name in names_in(text, g.other_customers):
        text = re.sub(re.escape(name), _REMOVED, text, flags=re.IGNORECASE)
    return escape_text(text)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?]" else f"{text}."


# --- answers ---------------------------------------------------------------------------------


def offline_answer(g: Grounding, question: str) -> str:
    """The facts the question asks about (ARR, contact, IC, impact, cause, ...), or a status
    summary when it asks about none of them. The question itself is never echoed."""
    topics = [answer for pattern, answer in _TOPICS if pattern.search(question)]
    head = "_The model is unavailable, so this answer comes from the recorded facts only._"
    if not topics:
        return "\n".join([head, *status_lines(g)])
    lines: list[str] = []
    for answer in topics:
        for line in answer(g):
            if line not in lines:
                lines.append(line)
    return "\n".join([head, *lines])


def _account(g: Grounding, key: str, label: str) -> list[str]:
    value = g.customer_facts.get(key)
    shown = one_line(str(value)) if value not in (None, "") else "not on file"
    return [f"{label}: {shown}."]


def _arr(g: Grounding) -> list[str]:
    arr = g.account_arr()
    if arr is None:
        return ["ARR: not recorded."]
    where = "from the declaration" if g.arr is not None else "from the account file"
    return [f"ARR: {format_arr(arr)} ({where})."]


def _fact_line(label: str, fact: Fact | None) -> str:
    if fact is None:
        return f"{label}: not recorded yet."
    return f"{label}: {_clip(one_line(fact.text))} ({fact.by}, {short_utc(fact.at)})."


def _causes(g: Grounding) -> list[str]:
    lines = [_fact_line("Confirmed cause", g.facts.cause)]
    lines += [
        f"Suspected, not confirmed: {_clip(one_line(s.text))} ({s.by})."
        for s in g.facts.suspected_causes
    ]
    return lines


def _actions(g: Grounding) -> list[str]:
    if not g.action_items:
        return ["Action items: none recorded."]
    return [
        f"Action: {one_line(a.owner)}: {_clip(one_line(a.text))}"
        + (f" (due {short_utc(a.due_at)})" if a.due_at else "")
        + (" (done)" if a.done else "")
        for a in g.action_items
    ]


def _follow_ups(g: Grounding) -> list[str]:
    if not g.follow_ups:
        return ["Follow-ups: none scheduled."]
    return ["Follow-ups: " + ", ".join(short_utc(t) for t in sorted(g.follow_ups)) + "."]


def _signer(g: Grounding) -> list[str]:
    return [f"Signer of customer letters: {one_line(g.signer) if g.signer else 'none on record'}."]


def _topic(words: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + words + r")(?!\w)", re.IGNORECASE)


_TOPICS = (
    (_topic(r"arr|revenue|worth|value|spend|contract size"), _arr),
    (
        _topic(r"exec\w*|contact|cto|ceo|cio|ciso|coo|cfo|who (?:do|should) we (?:call|write)"),
        lambda g: _account(g, "executive_contact", "Executive contact"),
    ),
    (_topic(r"csm|account manager|customer success"), lambda g: _account(g, "csm", "CSM")),
    (_topic(r"tier"), lambda g: _account(g, "tier", "Tier")),
    (_topic(r"notes?|renewal"), lambda g: _account(g, "notes", "Account notes")),
    (_topic(r"time ?zone|local time"), lambda g: _account(g, "timezone", "Time zone")),
    (
        _topic(r"sla|uptime|credits?|compensation"),
        lambda g: _account(g, "sla", "SLA") + _account(g, "credits", "Credit terms"),
    ),
    (_topic(r"ic|incident commander|commander|in charge"), lambda g: [f"IC: {one_line(g.ic)}."]),
    (_topic(r"impact\w*|affected|experienc\w*"), lambda g: [_fact_line("Impact", g.facts.impact)]),
    (_topic(r"workarounds?"), lambda g: [_fact_line("Workaround", g.facts.workaround)]),
    (_topic(r"eta|estimate|when .*fix\w*"), lambda g: [_fact_line("ETA", g.facts.eta)]),
    (_topic(r"cause[sd]?|why"), _causes),
    (_topic(r"actions?|action items?|owners?|to-?dos?"), _actions),
    (_topic(r"follow-?ups?|check-?ins?"), _follow_ups),
    (_topic(r"signs?|signer|signature"), _signer),
)


def status_lines(g: Grounding) -> list[str]:
    """Where the escalation stands: open or resolved, steps, deadlines, the last update."""
    lines = [f"Status: {g.status}."]
    if g.resolved_at is not None:
        lines.append(
            f"Resolved {short_utc(g.resolved_at)}, {human_duration(g.elapsed())} after it was "
            f"declared; incident commander {one_line(g.ic)}."
        )
    else:
        lines.append(
            f"Open for {human_duration(g.elapsed())} (declared {short_utc(g.declared_at)}); "
            f"incident commander {one_line(g.ic)}."
        )
    done = sum(1 for s in g.steps if s.done_at is not None)
    lines.append(f"Steps done: {done} of {len(g.steps)}.")
    overdue = [(s, s.due_at) for s in g.overdue_steps() if s.due_at]
    if overdue:
        lines.append(
            "Overdue: "
            + "; ".join(f"{one_line(s.title)} (due {short_utc(due)})" for s, due in overdue)
            + "."
        )
    upcoming = sorted(
        (s for s in g.steps if s.done_at is None and s.due_at is not None and s.due_at > g.now),
        key=lambda s: s.due_at or g.now,
    )
    if upcoming and upcoming[0].due_at is not None:
        nxt = upcoming[0]
        lines.append(
            f"Next deadline: {one_line(nxt.title)} at {short_utc(nxt.due_at)} "
            f"(in {human_duration(nxt.due_at - g.now)})."
        )
    lines.append(_last_update(g))
    if g.next_update_due is not None and g.resolved_at is None:
        lines.append(f"Next update due: {short_utc(g.next_update_due)}.")
    cause = g.root_cause()
    lines.append(f"Confirmed cause: {one_line(cause) if cause else 'none yet'}.")
    return lines


def _last_update(g: Grounding) -> str:
    # The last update is a status update or an approved customer update, whichever is later.
    updates = sorted(
        (e for e in g.timeline if e.kind in ("update", CUSTOMER_UPDATE)), key=lambda e: e.at
    )
    if updates:
        last = updates[-1]
        what = "customer update approved" if last.kind == CUSTOMER_UPDATE else "status update"
        return (
            f"Last update: {short_utc(last.at)} ({human_duration(g.now - last.at)} ago), "
            f'{what}: "{_clip(one_line(last.text))}".'
        )
    if g.last_update_at is not None:
        return (
            f"Last update: {short_utc(g.last_update_at)} "
            f"({human_duration(g.now - g.last_update_at)} ago)."
        )
    return "Last update: none recorded."


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else text[: CLIP - 1].rstrip() + "…"
