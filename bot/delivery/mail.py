"""An approved letter as an email message: headers, the thread it belongs to, and a plain-text
body with an HTML alternative rendered from the same text. Pure: no I/O, no clock.

Every letter of an escalation is one thread in the customer's mail client: its `Message-ID`
is derived from the escalation, the letter's number and the sending domain (so building it
again gives the same id), `In-Reply-To` and `References` name the letters before it, and the
later letters keep the first letter's subject behind `Re:` (Gmail and Outlook both split a
thread whose subject changes).
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

# CRLF line endings, 78-character folding, RFC 2047 encoded words for non-ASCII names: the
# form the message travels in, so the bytes kept in the outbox are the bytes sent.
POLICY = policy.SMTP

_SUBJECT_LINE = re.compile(r"\A[ \t]*subject:[ \t]*(?P<subject>[^\n]*)\n?", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^(?:(?:re|fwd?|aw|sv|antw)\s*:\s*)+", re.IGNORECASE)
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


class LetterError(ValueError):
    """The letter cannot be made into a message (an unusable address, no text)."""


@dataclass(frozen=True)
class Letter:
    """An approved letter and where it goes.

    `text` is the approved text: an optional first line `Subject: ...`, then the body.
    `number` is the letter's place among the escalation's letters (1 for the first);
    `first_subject` is the subject the escalation's first letter went out with (later letters
    keep it, as `Re: ...`); None for the first letter.
    """

    text: str
    escalation: str
    number: int
    signer: str
    sender: str
    reply_to: str
    to: str
    cc: tuple[str, ...] = ()
    first_subject: str | None = None


def split_subject(text: str) -> tuple[str, str]:
    """(subject, body) of a letter whose first line may be `Subject: ...`; the blank lines
    between the two are not part of the body."""
    match = _SUBJECT_LINE.match(text)
    if not match:
        return "", text
    return one_line(match["subject"]), text[match.end() :].lstrip("\r\n")


def one_line(text: str) -> str:
    """`text` with every run of whitespace and control characters as one space: a header
    value that cannot start another header."""
    return " ".join(_CONTROL.sub(" ", text).split())


def thread_subject(subject: str, number: int, first_subject: str | None) -> str:
    """The subject letter `number` goes out with: its own for the first letter, `Re: ` and the
    first letter's subject after it (so the customer's mail client keeps one thread)."""
    if number <= 1 or not first_subject:
        return one_line(subject)
    return "Re: " + _REPLY_PREFIX.sub("", one_line(first_subject))


def message_id(escalation: str, number: int, domain: str) -> str:
    """`<warroom.ESCALATION.N@DOMAIN>`: the same escalation, letter and domain always give
    the same id (an escalation id with characters a Message-ID cannot hold is hashed)."""
    if number < 1:
        raise LetterError("a letter's number starts at 1")
    part = escalation if _SAFE_ID.match(escalation) else _digest(escalation)
    return f"<warroom.{part}.{number}@{domain.lower()}>"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def address(addr_spec: str, display_name: str = "") -> Address:
    """One address, checked: a single plain ASCII `local@domain` (never a list, a group or a
    header's worth of text), with `display_name` made one line and quoted as needed."""
    spec = addr_spec.strip()
    if not spec.isascii() or _CONTROL.search(spec):
        raise LetterError(f"{spec!r} is not a plain ASCII email address")
    try:
        parsed = Address(addr_spec=spec)
    except (ValueError, IndexError) as e:
        raise LetterError(f"{spec!r} is not one email address") from e
    if not parsed.username or "." not in parsed.domain:
        raise LetterError(f"{spec!r} is not one email address")
    return Address(display_name=one_line(display_name), addr_spec=parsed.addr_spec)


def render_html(body: str) -> str:
    """The letter as HTML: every character escaped (the text is never markup), paragraphs at
    blank lines, line breaks kept."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    rendered = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line, quote=True) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        '<body style="font-family: sans-serif; line-height: 1.4">\n'
        f"{rendered}\n</body></html>\n"
    )


def build_message(letter: Letter, now: datetime) -> EmailMessage:
    """The email for `letter`, dated `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise LetterError("the date of a message needs a timezone")
    subject, body = split_subject(letter.text)
    if not body.strip():
        raise LetterError("the letter has no text")
    sender = address(letter.sender, letter.signer)
    reply_to = address(letter.reply_to)
    to = address(letter.to)
    cc = tuple(address(a) for a in letter.cc if a.strip())
    domain = sender.domain
    earlier = [message_id(letter.escalation, n, domain) for n in range(1, letter.number)]

    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["Reply-To"] = reply_to
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = thread_subject(subject, letter.number, letter.first_subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(letter.escalation, letter.number, domain)
    if earlier:
        msg["In-Reply-To"] = earlier[-1]
        msg["References"] = " ".join(earlier)
    msg.set_content(body, cte="quoted-printable")
    msg.add_alternative(render_html(body), subtype="html", cte="quoted-printable")
    # A boundary from the content (not the stdlib's random one): the same letter gives the same
    # bytes. Quoted-printable writes "=" as "=3D", so no line of a part can start with it.
    msg.set_boundary("=_warroom_" + _digest(msg["Message-ID"] + body))
    return msg


def recipients(msg: EmailMessage) -> list[str]:
    """The addresses of `To` and `Cc`: the SMTP envelope's recipients."""
    found: list[str] = []
    for name in ("To", "Cc"):
        header = msg.get(name)
        for a in getattr(header, "addresses", ()):
            if a.addr_spec not in found:
                found.append(a.addr_spec)
    return found
