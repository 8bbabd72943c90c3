"""A message in the reply mailbox, read (pure): which of our letters it names, whether a person
wrote it (a reply), a machine answered for them (an auto-reply) or the mail system sent the
letter back (a bounce), and a reply's new words without the quoted letter below them.

Everything in a message is the sender's: names, headers and text are untrusted, kept as plain
text for the caller to show inert. Nothing here raises on a malformed message: what cannot be
read is left out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser, HeaderParser
from email.utils import getaddresses
from enum import StrEnum
from html.parser import HTMLParser

# A Message-ID as it appears in In-Reply-To and References.
_MSG_ID = re.compile(r"<[^<>\s]+>")
# "On Mon, 2 Mar 2026 at 14:00, Victoria Vance <support@vendor.example> wrote:", which mail
# clients wrap over two lines; Outlook's "-----Original Message-----" and its header block.
_ON_WROTE = re.compile(r"^\s*On\b.*\bwrote:\s*$", re.IGNORECASE)
_ON_START = re.compile(r"^\s*On\b", re.IGNORECASE)
_WROTE_END = re.compile(r"\bwrote:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*From:\s.*$", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*(Sent|Date|To|Subject):\s", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?response|out of (the )?office|auto:)", re.IGNORECASE
)
_BLANK_RUNS = re.compile(r"\n{3,}")
# The most of a message's text read: a pasted log is not the customer's question.
TEXT_LIMIT = 20_000


class Kind(StrEnum):
    REPLY = "reply"  # a person's answer
    AUTO = "auto"  # an auto-reply (out of office, a ticket system's receipt): not theirs
    BOUNCE = "bounce"  # the mail system could not deliver the letter


@dataclass(frozen=True)
class Heads:
    """What the headers alone say: the ids a message answers, and whether it is a report."""

    answers: tuple[str, ...]  # In-Reply-To's ids first, then References' newest first
    report: bool  # multipart/report: a delivery report, whose letter is named in its body


@dataclass(frozen=True)
class InboundMail:
    kind: Kind
    ref: str  # the message's own Message-ID (or a digest of its bytes when it has none)
    answers: tuple[str, ...]  # the Message-IDs it names as the ones it answers
    author: str  # the From display name, else the address
    address: str = ""  # the From address, lower case
    text: str = ""  # a reply's new words
    attachments: int = 0
    undeliverable: tuple[str, ...] = ()  # a bounce's recipients that failed for good


def heads(header_bytes: bytes) -> Heads:
    """The ids named by a message's headers (only the header block is needed)."""
    msg = BytesHeaderParser(policy=policy.compat32).parsebytes(header_bytes)
    return Heads(_answers(msg), msg.get_content_type() == "multipart/report")


def read(raw: bytes) -> InboundMail:
    """The whole message, read."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    plain = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    ref = _one_id(str(plain.get("Message-ID", ""))) or (
        "<sha256." + hashlib.sha256(raw).hexdigest()[:32] + "@inbound>"
    )
    answers = _answers(plain)
    author = _author(plain)
    address = _address(plain)
    if msg.get_content_type() == "multipart/report":
        original, failed, told = _report(msg)
        if original and original not in answers:
            answers = (original, *answers)
        if told and not failed:  # delayed, or delivered after all: nothing came back
            return InboundMail(Kind.AUTO, ref, answers, author, address)
        return InboundMail(Kind.BOUNCE, ref, answers, author, address, undeliverable=failed)
    if _automatic(plain):
        return InboundMail(Kind.AUTO, ref, answers, author, address)
    text = new_words(_body(msg))
    return InboundMail(Kind.REPLY, ref, answers, author, address, text, _attachments(msg))


def new_words(text: str) -> str:
    """A reply's own words: the text above the quoted letter ("On ... wrote:", `>` lines,
    Outlook's "Original Message" block), without the signature after "-- "."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")[:TEXT_LIMIT].split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if _ON_WROTE.match(line) or (_ON_START.match(line) and _WROTE_END.search(following)):
            break
        if _ORIGINAL.match(line) or (_OUTLOOK_FROM.match(line) and _OUTLOOK_NEXT.match(following)):
            break
        if line.rstrip() == "--" or line == "-- ":
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip()


def html_text(markup: str) -> str:
    """An HTML body as the text a reader sees: tags dropped (never interpreted), entities
    decoded, blocks on lines of their own; scripts, styles and quoted blocks left out."""
    reader = _TextOf()
    try:
        reader.feed(markup[: TEXT_LIMIT * 4])
        reader.close()
    except Exception:  # a parser that gives up keeps what it read so far
        pass
    return reader.text()


class _TextOf(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title", "blockquote", "template"})
    _VOID = frozenset({"br", "img", "hr", "meta", "link", "input"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        if tag in self._SKIP or "gmail_quote" in classes or "moz-cite-prefix" in classes:
            if tag not in self._VOID:
                self._skipping.append(tag)
        elif tag in self._BLOCK and not self._skipping:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()
        elif tag in self._BLOCK and not self._skipping:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._parts.append(" ".join(data.split()) if "\n" in data else data)

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self._parts).split("\n")]
        return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _answers(msg: Message) -> tuple[str, ...]:
    found: list[str] = []
    in_reply_to = _MSG_ID.findall(str(msg.get("In-Reply-To", "")))
    references = _MSG_ID.findall(str(msg.get("References", "")))
    for mid in [*in_reply_to, *reversed(references)]:
        if mid not in found:
            found.append(mid)
    return tuple(found)


def _one_id(value: str) -> str | None:
    found = _MSG_ID.findall(value)
    return found[0] if found else None


def _author(msg: Message) -> str:
    try:
        ((name, addr),) = getaddresses([str(msg.get("From", ""))]) or [("", "")]
    except ValueError:
        return "someone"
    name = _decoded(name)
    return " ".join((name or addr or "someone").split())[:200]


def _address(msg: Message) -> str:
    try:
        found = getaddresses([str(msg.get("From", ""))])
    except ValueError:
        return ""
    return found[0][1].strip().lower() if found else ""


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _automatic(msg: Message) -> bool:
    auto_submitted = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if any(msg.get(h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponse")):
        return True
    if str(msg.get("Precedence", "")).strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(_AUTO_SUBJECT.match(_decoded(str(msg.get("Subject", "")))))


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, KeyError, AttributeError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    return html_text(content) if part.get_content_type() == "text/html" else content


def _attachments(msg: EmailMessage) -> int:
    try:
        return sum(1 for _ in msg.iter_attachments())
    except (KeyError, AttributeError, TypeError):
        return 0


def _report(msg: EmailMessage) -> tuple[str | None, tuple[str, ...], bool]:
    """A delivery report's original Message-ID, the recipients it failed for good, and whether
    it told of any recipient at all (a report of a delay tells of one, failing none)."""
    original: str | None = None
    failed: list[str] = []
    told = False
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload() if part.is_multipart() else []:
                if not isinstance(block, Message) or block.get("Action") is None:
                    continue
                told = True
                if str(block.get("Action", "")).strip().lower() != "failed":
                    continue
                recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient"))
                address = recipient.rpartition(";")[2].strip()
                if "@" in address and address not in failed:
                    failed.append(" ".join(address.split())[:200])
        elif kind in ("message/rfc822", "text/rfc822-headers") and original is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = _one_id(str(inner[0].get("Message-ID", "")))
            elif isinstance(inner, str):
                headers = HeaderParser(policy=policy.compat32).parsestr(inner, headersonly=True)
                original = _one_id(str(headers.get("Message-ID", "")))
    return original, tuple(failed), told
