"""The VP agent's letters, judged automatically: nine escalations (`bench.draft_cases`) drafted
offline, each letter checked, and each request to the model checked for the facts the same
checks need.

Per letter: nothing internal copied into it (no run of the summary, an update, the room's
talk or a suspected cause), no other customer, no internal id, no unconfirmed cause, only the
scheduled time promised, signed by the VP (or a placeholder), times in the account's time zone,
and a placeholder for every missing fact. Per request (through the loopback Messages API, with
the real SDK): the frame (greeting, signer, promised time, time zone, situation), the other
customers and suspected causes marked internal, the placeholders to use, the customer facts
with their ids. Then the offline reviews of the same escalations, and the review cases
(`bench.review_cases`: credits, key moments, the customer conversation).

Run: python -m bench.drafts
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from agents import assessment, audit, offline, offline_review, prompts
from agents.checks import find_placeholders
from agents.grounding import Grounding
from agents.playbook import Frame, frame
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
    review_header = ["escalation", "review checks", "impact from facts", "actions on record",
                     "SLA weighed"]  # fmt: skip
    table(review_header, [[c.name, *review_row(c.g)] for c in all_cases])
    review_cases.report()


if __name__ == "__main__":
    main()
