"""The VP agent's letters, judged automatically: nine escalations (`bench.draft_cases`) drafted
offline, each letter checked, and each request to the model checked for the facts the same
checks need.

Per letter: nothing internal copied into it (no run of the summary, an update, the room's
talk or a suspected cause), no other customer, no internal id, no unconfirmed cause, only the
scheduled time promised, signed by the VP (or a placeholder), times in the account's time zone,
and a placeholder for every missing fact. Per request (through the loopback Messages API, with
the real SDK): the frame (greeting, signer, promised time, time zone, situation), the other
customers and suspected causes marked internal, the placeholders to use, the customer facts
with their ids. Then the customer conversation, checked on the text alone (not by the
findings): an ended impact told as ended with no fix time or workaround, a changed or passed
ETA and a late update owned with an apology, every recorded fact used, the contact greeted
without a guessed family name, one start, the situation (a written notice about data, the
press paragraph with its contact, the executive's asks shown to the approver); the findings
on each clean letter (false positives) and on a spoiled copy of it (misses); and whether the
request tells the model the same. Then the offline reviews of the same escalations, and the
review cases (`bench.review_cases`: credits, key moments, the customer conversation).

Run: python -m bench.drafts
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta

from agents import assessment, audit, offline, offline_review, prompts
from agents.checks import find_placeholders
from agents.grounding import Grounding
from agents.playbook import Frame, executive_asks, frame, past
from agents.review import parse_review
from agents.vp import VPAgent
from bench import review_cases
from bench.draft_cases import Case, cases
from loopback.anthropic import FakeAnthropic

OK, NO = "✓", "✗"

# Each check: its column, and the finding kinds that fail it.
LETTER_CHECKS: tuple[tuple[str, frozenset[str]], ...] = (
    ("no leak", frozenset({"copied"})),
    ("no other customer", frozenset({"other customer"})),
    ("no internal id", frozenset({"internal id"})),
    ("no unconfirmed cause", frozenset({"unconfirmed cause"})),
    ("scheduled time", frozenset({"promised time"})),
    ("signed", frozenset({"signature"})),
    ("time zone", frozenset({"time zone"})),
    ("placeholders", frozenset({"missing fact"})),
)


def letter_row(g: Grounding, text: str) -> list[bool]:
    f = frame(g)
    kinds = {finding.kind for finding in audit.letter(g, text)}
    row = [not (kinds & failing) for _, failing in LETTER_CHECKS]
    # The positive halves the findings cannot show: the promise is there, and so is the zone.
    row[4] = row[4] and f.promise in text
    zone_label = f.time(g.now).rsplit(" ", 1)[1]
    row[6] = row[6] and zone_label in text
    # Nothing internal verbatim, however short.
    row[0] = row[0] and not any(
        piece.strip() in text
        for source in g.internal_texts()
        for piece in re.split(r"[;.]", source)
        if len(piece.split()) >= 3
    )
    return row


def section(text: str, tag: str) -> str:
    start = text.find(f"<{tag}")
    end = text.find(f"</{tag}>")
    return text[start:end] if start >= 0 and end >= 0 else ""


def request_checks(g: Grounding, f: Frame, user: str) -> list[tuple[str, bool]]:
    said = section(user, "customer_facts")
    internal = section(user, "internal_record")
    holes = find_placeholders(user)
    wanted = find_placeholders(offline.offline_customer_update(g))
    others = g.other_customers
    checks = [
        ("greeting", f.greeting in user),
        ("signer", f.signer in user),
        ("promised time", f.promise in user),
        ("time zone", f.zone_name in user),
        ("situation", f"Write the {f.kind}" in user),
        ("late apology", ("apologise for the delay" in user) is f.first_contact_late),
        ("facts with ids", all(x.id in said for x in g.facts.said())),
        ("others internal", all(c in section(internal, "other_customers") for c in others)),
        (
            "suspected internal",
            all(s.text in internal and s.text not in said for s in g.facts.suspected_causes),
        ),
        ("placeholders", all(w in holes or w.startswith("[check:") for w in wanted)),
    ]  # fmt: skip
    return checks


def model_requests(all_cases: list[Case]) -> list[tuple[str, str]]:
    """Each case's request to the model, as the loopback API received it."""
    with FakeAnthropic() as model:
        agent = VPAgent(api_key=model.api_key, base_url=model.url, timeout=10, max_retries=0)
        try:
            for case in all_cases:
                agent.customer_update(case.g)
        finally:
            agent.close()
        return [(r.system_text(), r.user_text()) for r in model.requests]


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def mark(value: bool) -> str:
    return OK if value else NO


# --- the customer conversation, checked on the text alone ------------------------------------

# Findings a clean letter may carry: gaps a person fills (a placeholder, the executive's asks
# the offline drafter cannot answer), not something wrong.
GAPS = frozenset({"placeholder", "missing fact", "executive ask"})
_HONORIFIC = re.compile(r"^(?:Mr|Mrs|Ms|Mx|Dr|Prof|Miss)\.?\s", re.IGNORECASE)
_START = re.compile(
    r"\b(?:began|started|since)(?:\s+(?:at|on))?\s+(?:[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2} \d{4}, )?"
    r"(\d{1,2}:\d{2})"
)


def _has(text: str, said: str) -> bool:
    return said.strip().rstrip(".").casefold() in " ".join(text.split()).casefold()


def _eta_due(g: Grounding) -> bool:
    """The last letter's ETA has passed (a number of hours from when it was recorded)."""
    last = g.told[-1] if g.told else None
    m = re.search(r"within (\d+) hours?", last.eta or "") if last else None
    if last is None or m is None:
        return False
    return (last.eta_at or last.at) + timedelta(hours=int(m.group(1))) < g.now


def conversation_row(g: Grounding, text: str) -> dict[str, bool | None]:
    """Each conversation check: True, False, or None where the case does not call for it."""
    facts = g.facts
    last = g.told[-1] if g.told else None
    flat = " ".join(text.split())
    ended = facts.impact_ended is not None and not g.resolved
    row: dict[str, bool | None] = {}
    row["ended told as ended"] = (
        "ended" in flat
        and "When to expect a fix" not in flat
        and not (facts.workaround and _has(text, facts.workaround.text))
        if ended
        else None
    )
    eta_moved = bool(last and last.eta and (facts.eta is None or facts.eta.text != last.eta))
    if last and last.eta and (eta_moved or _eta_due(g)):
        # Named with an apology: the old estimate and "sorry" in one paragraph.
        row["ETA owned"] = any(
            _has(p, last.eta) and "sorry" in p.casefold() for p in text.split("\n\n")
        )
    else:
        row["ETA owned"] = None
    if last and last.promised and g.now > last.promised:
        promised = frame(g).time(last.promised)
        row["late owned"] = any(
            promised in " ".join(p.split()) and "sorry" in p.casefold() for p in text.split("\n\n")
        )
    else:
        row["late owned"] = None
    wanted = [facts.impact, facts.advice, facts.cause]
    if g.resolved:
        wanted.append(facts.fixed)  # what we were doing is over: no progress report
    else:
        wanted.append(facts.doing)
    if not ended and not g.resolved:
        wanted.append(facts.workaround)
    # In either tense: an impact that is over is told in the past.
    used = [
        _has(text, t) or _has(text, past(t))
        for w in wanted
        if w
        for t in [re.sub(r"\s*since \d{1,2}:\d{2}", "", w.text)]
    ]
    if facts.no_workaround and not ended:
        used.append("no workaround" in flat)
    row["facts used"] = all(used) if used else None
    contact = (g.executive_contact() or "").split(",")[0].strip()
    if _HONORIFIC.match(contact) and len(contact.split()) > 2:
        guessed = f"Dear {contact.split()[0]} {contact.split()[-1]},"
        row["no guessed name"] = guessed not in text
    else:
        row["no guessed name"] = None
    row["one start"] = len(set(_START.findall(flat))) <= 1
    criteria = set(g.criteria_ids)
    situation: list[bool] = []
    if "legal_regulatory" in criteria and "security_incident" not in criteria:
        situation.append("written notice" in flat and "disruption" not in flat)
    if "media_pr" in criteria:
        situation.append("press" in flat and bool(g.press_contact) and g.press_contact in flat)
    if executive_asks(g):
        # The letter cannot answer them offline: the approver is shown them under the draft.
        situation.append(any(f.kind == "executive ask" for f in audit.letter(g, text)))
    if g.unanswered_replies():
        # Their question owned, none of their words repeated.
        asks = any(r.asks for r in g.unanswered_replies())
        situation.append(
            ("your question" in flat if asks else "your message" in flat)
            and not any(f.kind == "customer's words" for f in audit.letter(g, text))
        )
    row["situation"] = all(situation) if situation else None
    return row


def spoil(g: Grounding, text: str) -> str | None:
    """The letter with the mistake the case is about, for the findings to catch (None when
    the case has none to make)."""
    facts = g.facts
    if facts.impact_ended is not None and not g.resolved:
        return text.replace(
            "The cause:", "When to expect a fix: we cannot yet say.\nThe cause:"
        ).replace("has ended", "continues")
    if g.unanswered_replies():
        # Their words quoted back to them.
        asked = g.unanswered_replies()[-1].text
        return text.replace("Thank you for your message.", f"You asked: {asked}")
    out = [p for p in text.split("\n\n") if not p.startswith("Our last update")]
    if len(out) < len(text.split("\n\n")):
        return "\n\n".join(out)
    if facts.advice is not None:
        return "\n".join(line for line in text.splitlines() if "recommend" not in line)
    if facts.no_workaround:
        return text.replace("there is no workaround for this, so all of our effort is going "
                            "into the fix.", "[workaround: record one]")  # fmt: skip
    return None


CONVERSATION_RULES = (
    ("ended", lambda g: g.facts.impact_ended is not None and not g.resolved, "The impact ended"),
    ("ETA", lambda g: bool(g.told and g.told[-1].eta), "to expect a fix"),
    ("late", lambda g: bool(g.told and g.told[-1].promised and g.now > g.told[-1].promised),
     "this one comes later"),
    ("advice", lambda g: g.facts.advice is not None, "advice fact"),
    ("no workaround", lambda g: g.facts.no_workaround, "There is no workaround"),
    ("one start", lambda g: g.facts.impact_began is not None, "state that one start"),
    ("regulatory", lambda g: "legal_regulatory" in g.criteria_ids, "a written notice"),
    ("press", lambda g: "media_pr" in g.criteria_ids, "The press is asking"),
    ("asks", lambda g: bool(executive_asks(g)), "Their executive asked"),
    ("customer wrote", lambda g: bool(g.unanswered_replies()), "The customer wrote to us"),
)  # fmt: skip


def conversation_table(all_cases: list[Case], letters: list[str], users: list[str]) -> None:
    names = list(conversation_row(all_cases[0].g, letters[0]))
    rows = []
    totals = {"false positives": 0, "spoiled": 0, "caught": 0, "failed": 0}
    for case, text, user in zip(all_cases, letters, users, strict=True):
        row = conversation_row(case.g, text)
        totals["failed"] += sum(1 for v in row.values() if v is False)
        extra = [f for f in audit.letter(case.g, text) if f.kind not in GAPS]
        totals["false positives"] += len(extra)
        spoiled = spoil(case.g, text)
        caught = "-"
        if spoiled is not None and spoiled != text:
            totals["spoiled"] += 1
            before = {str(f) for f in audit.letter(case.g, text)}
            new = [f for f in audit.letter(case.g, spoiled) if str(f) not in before]
            caught = mark(bool(new))
            totals["caught"] += bool(new)
        wanted = [(n, phrase) for n, applies, phrase in CONVERSATION_RULES if applies(case.g)]
        told = sum(1 for _, phrase in wanted if phrase in user)
        rules = f"{told}/{len(wanted)}" if wanted else "-"
        shown = ["-" if v is None else mark(v) for v in row.values()]
        rows.append([case.name, *shown, str(len(extra)), caught, rules])
    header = ["escalation", *names, "findings on clean", "spoiled caught", "model told"]
    table(header, rows)
    print(
        f"\n{totals['failed']} failed conversation check(s); {totals['false positives']} "
        f"finding(s) on clean letters (false positives, gaps aside); {totals['caught']} of "
        f"{totals['spoiled']} spoiled letters caught. 'model told': the request's rules for the "
        "states the case is in."
    )


def review_row(g: Grounding) -> list[str]:
    markdown = offline_review.offline_review(g)
    review = parse_review(markdown)
    found = assessment.impact(g)
    checks: list[Callable[[], bool]] = [
        lambda: not audit.review(g, markdown),
        lambda: found.span is None or "It began" in review["customer_impact"],
        lambda: (
            [a["owner"] for a in review["action_items"] if a["owner"]]
            == [a.owner for a in g.action_items]
        ),
        lambda: not g.customer_facts.get("sla") or "SLA" in review["compensation"],
    ]
    return [mark(check()) for check in checks]


def main() -> None:
    all_cases = cases()
    started = time.monotonic()
    letters = [offline.offline_customer_update(c.g) for c in all_cases]
    took = (time.monotonic() - started) / len(all_cases)
    requests = model_requests(all_cases)

    print(f"{len(all_cases)} escalations; offline letters ({took * 1000:.1f} ms each):\n")
    rows = []
    failures = 0
    for case, text, (_, user) in zip(all_cases, letters, requests, strict=True):
        f = frame(case.g)
        row = letter_row(case.g, text)
        failures += row.count(False)
        carried = request_checks(case.g, f, user)
        passed = sum(ok for _, ok in carried)
        missing = ", ".join(name for name, ok in carried if not ok)
        carries = f"{passed}/{len(carried)}" + (f" (missing: {missing})" if missing else "")
        gaps = str(len(find_placeholders(text)))
        rows.append([case.name, f.kind, *map(mark, row), gaps, carries])
    header = ["escalation", "letter", *(name for name, _ in LETTER_CHECKS), "gaps"]
    table([*header, "request to the model"], rows)
    print(
        f"\n{failures} failed check(s). 'gaps': placeholders a person fills before approving. "
        "'request to the model': of 10 facts the checks need (greeting, signer, promised time, "
        "time zone, situation, late apology, facts with ids, other customers and suspected "
        "causes marked internal, placeholders)."
    )
    system = requests[0][0]
    print(
        f"\nCached system prompt: about {len(system) // 4:,} tokens (4 characters a token); "
        f"{prompts.MAX_TOKENS['customer_update']} output tokens at most per letter.\n"
    )
    print("The customer conversation (checked on each letter's text):\n")
    conversation_table(all_cases, letters, [user for _, user in requests])
    print()
    review_header = ["escalation", "review checks", "impact from facts", "actions on record",
                     "SLA weighed"]  # fmt: skip
    table(review_header, [[c.name, *review_row(c.g)] for c in all_cases])
    review_cases.report()


if __name__ == "__main__":
    main()
