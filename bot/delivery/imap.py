"""The reply mailbox over IMAP: one URL (`WARROOM_IMAP_URL`), TLS always, and the few commands
reading replies takes: the messages that came in since a UID, their headers, one whole
message, a flag on the ones that were ours. Nothing is deleted, and nothing is marked read by
reading it (every fetch is a PEEK).

    imaps://USER:PASSWORD@HOST[:993][/MAILBOX]   TLS from the first byte
    imap://USER:PASSWORD@HOST[:143][/MAILBOX]    STARTTLS, required: a server that does not
                                                 offer it is not logged in to
    ...?ca_file=/path/ca.pem                     trust this CA (a private one)
    ...?timeout=30                               seconds for the connection and each answer
    ...?flag=$warroom                            the keyword set on the messages that were
                                                 ours (a server without keywords: \\Seen)
    imap://USER:PASSWORD@127.0.0.1:1143?tls=off  no TLS: only to this machine

The mailbox is INBOX unless the path names another (percent-encoded). User and password are
percent-encoded; the password is never shown: not by `repr`, `str`, nor in any error.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import quote

from bot.delivery.urls import DEFAULT_TIMEOUT, OPTIONS, parse_server_url, shown

DEFAULT_PORTS = {"imap": 143, "imaps": 993}
DEFAULT_FLAG = "$warroom"
FORM = "imaps://USER:PASSWORD@HOST:993/INBOX or imap://USER:PASSWORD@HOST:143 (STARTTLS)"
_OPTIONS = OPTIONS | {"flag"}
_ATOM = re.compile(r"^\$?[A-Za-z0-9_.-]{1,64}$")
_FETCHED_UID = re.compile(rb"\bUID (\d+)")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# UIDs asked for in one FETCH: a command line stays short, an answer reasonably small.
BATCH = 100


class ImapURLError(ValueError):
    """WARROOM_IMAP_URL is not a usable IMAP URL; the message never shows the password."""


class ImapError(Exception):
    """The mailbox could not be read (down, refused the login, dropped the connection): one
    line fit for a log, without the password. Nothing was changed by the failed step."""


@dataclass(frozen=True)
class ImapURL:
    host: str
    port: int
    implicit_tls: bool
    username: str
    password: str = field(default="", repr=False)
    mailbox: str = "INBOX"
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    flag: str = DEFAULT_FLAG
    plaintext: bool = False

    def __str__(self) -> str:
        scheme = "imaps" if self.implicit_tls else "imap"
        return shown(
            scheme,
            self.username,
            self.password,
            self.host,
            self.port,
            self.mailbox,
            ca_file=self.ca_file,
            plaintext=self.plaintext,
        )

    def __repr__(self) -> str:
        return f"ImapURL({str(self)!r})"


def parse_imap_url(url: str) -> ImapURL:
    """The parts of `url`, or ImapURLError in one line that shows no part of it."""
    read = parse_server_url(
        url, ports=DEFAULT_PORTS, form=FORM, kind="IMAP", options=_OPTIONS, error=ImapURLError
    )
    if not read.username or not read.password:
        raise ImapURLError(f"it needs a user and a password: {FORM}")
    flag = read.option("flag") or DEFAULT_FLAG
    if not _ATOM.match(flag) or flag.lower() in ("$deleted", "deleted"):
        raise ImapURLError("flag is one keyword of letters, digits, '$', '_', '.' or '-'")
    mailbox = read.path or "INBOX"
    if any(c in mailbox for c in '\r\n"\\') or not mailbox.isascii():
        raise ImapURLError("the mailbox is a plain ASCII name")
    return ImapURL(
        host=read.host,
        port=read.port,
        implicit_tls=read.implicit_tls,
        username=read.username,
        password=read.password,
        mailbox=mailbox,
        ca_file=read.option("ca_file"),
        timeout=read.timeout,
        flag=flag,
        plaintext=read.plaintext,
    )


class Mailbox:
    """Opens sessions on the mailbox of one IMAP URL."""

    def __init__(self, url: ImapURL) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"Mailbox({self.url})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A logged-in session with the mailbox selected, logged out at the end. Every failure
        of the mailbox, here or in the session's calls, is an ImapError."""
        conn: imaplib.IMAP4 | None = None
        try:
            with self.failures():
                conn = self._connect()
                conn.login(self.url.username, self.url.password)
                typ, _ = conn.select(_quoted(self.url.mailbox))
                if typ != "OK":
                    raise ImapError(f"mailbox {self.url.mailbox!r} cannot be opened")
                session = Session(conn, self.url, self)
            yield session
        finally:
            if conn is not None:
                _logout(conn)

    @contextmanager
    def failures(self) -> Iterator[None]:
        """The mailbox's failures inside, as ImapError without the password."""
        try:
            yield
        except ssl.SSLCertVerificationError as e:
            raise ImapError(
                f"the server's certificate is not trusted ({self._text(e.verify_message)}): "
                "give its CA with ?ca_file= in WARROOM_IMAP_URL"
            ) from None
        except (imaplib.IMAP4.error, OSError, EOFError) as e:
            where = f"{self.url.host}:{self.url.port}"
            raise ImapError(f"{where}: {type(e).__name__}: {self._text(str(e))}") from None

    def _connect(self) -> imaplib.IMAP4:
        url = self.url
        if url.implicit_tls:
            return imaplib.IMAP4_SSL(
                url.host, url.port, ssl_context=self._context(), timeout=url.timeout
            )
        conn = imaplib.IMAP4(url.host, url.port, timeout=url.timeout)
        if not url.plaintext:
            if "STARTTLS" not in conn.capabilities:
                _logout(conn)
                raise ImapError(f"{url.host}:{url.port} offers no STARTTLS, and TLS is required")
            conn.starttls(ssl_context=self._context())
        return conn

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.url.ca_file)

    def _text(self, answer: bytes | str | None) -> str:
        """A server's answer fit for a log line: one line, no password in it."""
        if answer is None:
            return ""
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
        text = " ".join(text.split())
        password = self.url.password
        if password:
            for form in {password, quote(password, safe=""), _quoted(password)}:
                text = text.replace(form, "***")
        return text[:300]


class Session:
    """One logged-in connection with the mailbox selected."""

    def __init__(self, conn: imaplib.IMAP4, url: ImapURL, mailbox: Mailbox) -> None:
        self.conn = conn
        self.url = url
        self.mailbox = mailbox
        self.validity = _number(conn.response("UIDVALIDITY")[1])
        flags = b" ".join(f for f in conn.response("PERMANENTFLAGS")[1] or [] if f)
        # A server that keeps no keywords of ours still keeps \Seen.
        self.flag = url.flag if b"\\*" in flags or url.flag.encode() in flags else "\\Seen"

    def since(self, after_uid: int | None, since: date) -> list[int]:
        """The UIDs of the messages after `after_uid` (or, without one, that came in on or
        after `since`), oldest first."""
        with self.mailbox.failures():
            return self._since(after_uid, since)

    def _since(self, after_uid: int | None, since: date) -> list[int]:
        if after_uid is None:
            day = f"{since.day}-{_MONTHS[since.month - 1]}-{since.year}"
            found = self._ok(self.conn.uid("SEARCH", "SINCE", day), "SEARCH")
        else:
            found = self._ok(self.conn.uid("SEARCH", "UID", f"{after_uid + 1}:*"), "SEARCH")
        uids = {int(n) for chunk in found if chunk for n in chunk.split()}
        # "N:*" always names the newest message, even one below N.
        return sorted(u for u in uids if after_uid is None or u > after_uid)

    def headers(self, uids: Sequence[int]) -> dict[int, bytes]:
        """Each message's header block (a message gone since is left out)."""
        found: dict[int, bytes] = {}
        for start in range(0, len(uids), BATCH):
            batch = ",".join(str(u) for u in uids[start : start + BATCH])
            with self.mailbox.failures():
                found.update(self._fetch(batch, "BODY.PEEK[HEADER]"))
        return found

    def message(self, uid: int) -> bytes | None:
        """The whole message, unread by reading it; None when it is gone."""
        with self.mailbox.failures():
            return self._fetch(str(uid), "BODY.PEEK[]").get(uid)

    def mark(self, uid: int) -> None:
        """Flag the message as ours (done with)."""
        with self.mailbox.failures():
            self._ok(self.conn.uid("STORE", str(uid), "+FLAGS.SILENT", f"({self.flag})"), "STORE")

    def _fetch(self, uids: str, item: str) -> dict[int, bytes]:
        data = self._ok(self.conn.uid("FETCH", uids, f"(UID {item})"), "FETCH")
        found = {}
        for entry in data:
            if isinstance(entry, tuple) and len(entry) == 2:
                uid = _FETCHED_UID.search(entry[0])
                if uid is not None:
                    found[int(uid[1])] = entry[1]
        return found

    @staticmethod
    def _ok(answer: tuple[str, list], what: str) -> list:
        typ, data = answer
        if typ != "OK":
            raise imaplib.IMAP4.error(f"{what} answered {typ}")
        return data


def _number(data: list | None) -> int:
    try:
        return int((data or [b"0"])[0] or 0)
    except (TypeError, ValueError):
        return 0


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError, EOFError):
        with suppress(OSError):
            conn.shutdown()
