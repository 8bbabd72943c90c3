"""Which letter a situation calls for, and its frame: the decisions the model's prompt and the
offline drafter must agree on, made once from a `Grounding`.

A customer letter is an update while the escalation is open and the resolution notice once it
is resolved. A security incident adds what the customer should do. A top-tier account at risk
of churning, or an account whose executive is angry, gets the letter personally from the VP,
with an offer to talk. Every letter carries a subject, greets the contact by name, gives times
in the account's time zone, promises only the scheduled time (the next update, or the first
follow-up after resolution), owns a missed first-contact deadline and is signed by the VP on
record. Where a fact is missing the frame holds a placeholder that says what to record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from agents.checks import placeholder
from agents.grounding import Grounding, ceil_minute, human_time

SECURITY = "security_incident"
CHURN_RISK = "arr_churn_risk"

SIGNER_TITLE = "VP of Customer Support"

# An executive, by title or role. The contact's own names are added per account.
_EXECUTIVE = (
    r"CEO|CTO|CFO|COO|CIO|CISO|CSO|CRO|CPO|CMO|CDO|chief [a-z]+ officer|president|founder|"
    r"co-founder|owner|exec|execs|executive|executives|VP|SVP|EVP|vice president|"
    r"head of [a-z]+|managing director|board"
)
# Anger, or the threats that come with it.
_ANGER = (
    r"angry|anger|furious|fuming|livid|irate|upset|frustrated|frustration|outraged|"
    r"annoyed|unhappy|displeased|threaten|threatens|threatened|threatening|going public|"
    r"go public|to the press|on social media|lawyers?"
)
_CLAUSE = re.compile(r"[^.!?;\n]+")


def angry_executive(g: Grounding) -> str | None:
    """Where the record says the customer's executive is angry, or None.

    The rule: one sentence of the account notes, the summary, a timeline entry or a room
    message names an executive (a title such as CEO or COO, "exec", "VP", "board", or the
    executive contact by name) and also says they are angry (angry, furious, upset,
    frustrated, ...) or threaten something (to go public, to the press, lawyers).
    """
    contact = (g.executive_contact() or "").split(",")[0]
    names = [re.escape(n) for n in contact.split() if len(n) > 2 and n[0].isupper()]
    executive = re.compile(
        r"(?<!\w)(?:" + "|".join([_EXECUTIVE, *names]) + r")(?!\w)", re.IGNORECASE
    )
    anger = re.compile(r"(?<!\w)(?:" + _ANGER + r")(?!\w)", re.IGNORECASE)
    sources = [("the account notes", str(g.customer_facts.get("notes") or ""))]
    sources.append(("the summary", g.summary))
    sources += [(f"timeline entry {e.id}".strip(), e.text) for e in g.timeline]
    sources += [(f"room message {m.id}".strip(), m.text) for m in g.room_messages]
    for where, text in sources:
        for clause in _CLAUSE.findall(text):
            if executive.search(clause) and anger.search(clause):
                return where
    return None


def personal_reasons(g: Grounding) -> tuple[str, ...]:
    """Why the VP writes personally: churn risk, an angry executive; () when neither."""
    reasons = []
    if CHURN_RISK in g.criteria_ids:
        reasons.append("a top-tier account at risk of churning")
    where = angry_executive(g)
    if where:
        reasons.append(f"an angry executive ({where})")
    return tuple(reasons)


# --- the frame of a letter -------------------------------------------------------------------

MISSING = {
    "impact": placeholder("impact", "record what the customer experiences with @vp impact <text>"),
    "doing": placeholder(
        "what we are doing", "write in the customer's terms what the team is doing now"
    ),
    "workaround": placeholder(
        "workaround",
        "record one with @vp workaround <text>, or delete this line if there is none",
    ),
    "advice": placeholder(
        "what the customer should do",
        "write the steps the facts support, e.g. rotate the affected credentials, review "
        "access logs from the start of the incident",
    ),
    "fix": placeholder("what fixed it", "one sentence in the customer's terms"),
    "signer": placeholder("signer", "the VP who signs this letter"),
    "check-in": placeholder(
        "check-in", "no follow-up is scheduled; write when we will check in with them"
    ),
}


def contact_placeholder(g: Grounding) -> str:
    return placeholder(
        "contact",
        f"add executive_contact for {' '.join(g.customer.split())} to customer_insights.yaml",
    )


_HONORIFICS = {"dr": "Dr", "prof": "Prof", "mr": "Mr", "ms": "Ms", "mrs": "Mrs", "mx": "Mx"}


def greeting_name(contact: str | None) -> str | None:
    """How a person greets the contact: "Dana" for "Dana Whitfield, CTO", "Dr Okafor" for
    "Dr. Ngozi Okafor"; None when no name can be read (empty, an email, only a title)."""
    if not contact:
        return None
    name = contact.split(",")[0].strip()
    if not name or "@" in name or "<" in name:
        return None
    words = name.split()
    honorific = _HONORIFICS.get(words[0].rstrip(".").casefold())
    if honorific:
        return f"{honorific} {words[-1]}" if len(words) > 1 else None
    first = words[0]
    # "CTO" alone is a role, not a name.
    if first.isupper() and len(first) <= 5:
        return None
    return first


@dataclass(frozen=True)
class Frame:
    """A customer letter's situation and fixed parts."""

    resolved: bool
    security: bool
    personal: tuple[str, ...]  # why the VP writes personally; () for a team letter
    zone: tzinfo
    zone_name: str  # "America/Chicago", or "UTC" when the account has none
    greeting: str  # "Dear Dana," (or with the contact placeholder)
    signer: str  # the VP's name, or the signer placeholder
    promise_at: datetime | None  # the next update, or the check-in after resolution
    first_contact_late: bool

    @property
    def kind(self) -> str:
        """A name for the situation, as the prompt and the bench show it."""
        kind = "resolution notice" if self.resolved else "status update"
        if self.security:
            kind = f"security {kind}"
        return f"personal {kind}" if self.personal else kind

    def time(self, at: datetime) -> str:
        return human_time(at, self.zone)

    @property
    def promise(self) -> str:
        """The promised time as the letter writes it, or the check-in placeholder."""
        return self.time(self.promise_at) if self.promise_at else MISSING["check-in"]

    @property
    def signature(self) -> str:
        return f"{self.signer}\n{SIGNER_TITLE}"


def frame(g: Grounding) -> Frame:
    zone = g.zone()
    name = str(g.customer_facts.get("timezone") or "").strip() if zone is not UTC else "UTC"
    who = greeting_name(g.executive_contact())
    return Frame(
        resolved=g.resolved,
        security=SECURITY in g.criteria_ids,
        personal=personal_reasons(g),
        zone=zone,
        zone_name=name or "UTC",
        greeting=f"Dear {who or contact_placeholder(g)},",
        signer=" ".join((g.signer or "").split()) or MISSING["signer"],
        promise_at=promised_at(g),
        first_contact_late=g.first_contact_late(),
    )


def promised_at(g: Grounding) -> datetime | None:
    """The one time a customer letter may promise: the next update while open; after
    resolution, the first scheduled follow-up still ahead (None when there is none)."""
    if not g.resolved:
        return g.promised_next_update()
    ahead = sorted(f for f in g.follow_ups if f > g.now)
    return ceil_minute(ahead[0]) if ahead else None


def subject(g: Grounding, f: Frame) -> str:
    customer = " ".join(g.customer.split())
    if f.resolved:
        what = "security incident" if f.security else "service issue"
        return f"Resolved: the {what} affecting {customer}"
    if f.security:
        return f"Security incident affecting {customer}: what we know and what to do"
    if f.personal:
        return f"The service issue affecting {customer}: a personal note"
    return f"Update on the service issue affecting {customer}"
