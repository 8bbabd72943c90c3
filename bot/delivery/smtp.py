"""The SMTP transaction: one message to its recipients over TLS, with authentication, from one
URL (`WARROOM_SMTP_URL`), and what became of it, told so a caller knows whether to try again.

    smtp://USER:PASSWORD@HOST[:587]    STARTTLS, required: a server that does not offer it is
                                       not sent to
    smtps://USER:PASSWORD@HOST[:465]   TLS from the first byte
    ...?ca_file=/path/ca.pem           trust this CA (a private one) instead of the system's
    ...?timeout=30                     seconds for the connection and each reply
    smtp://127.0.0.1:2525?tls=off      no TLS: only to this machine (a local test server)

User and password are percent-encoded (`%40` for `@`). The password is never shown: not by
`repr`, `str`, nor in any outcome's reason.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote

from bot.delivery.urls import DEFAULT_TIMEOUT, OPTIONS, parse_server_url, shown

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
FORM = "smtp://USER:PASSWORD@HOST:587 (STARTTLS) or smtps://USER:PASSWORD@HOST:465"
# Where in the transaction something went wrong, in a reason's words.
_STAGES = {
    "connect": "the connection",
    "hello": "the greeting, TLS or login",
    "envelope": "the envelope (sender and recipients)",
    "data": "the message",
    "done": "the message",
}


class SmtpURLError(ValueError):
    """WARROOM_SMTP_URL is not a usable SMTP URL; the message never shows the password."""


@dataclass(frozen=True)
class SmtpURL:
    """Where and how to send: the parts of an `smtp://` or `smtps://` URL."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    # Plain text, no TLS at all: accepted only for a server on this machine.
    plaintext: bool = False

    def __str__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        return shown(
            scheme,
            self.username,
            self.password,
            self.host,
            self.port,
            ca_file=self.ca_file,
            plaintext=self.plaintext,
        )

    def __repr__(self) -> str:
        return f"SmtpURL({str(self)!r})"


def parse_smtp_url(url: str) -> SmtpURL:
    """The parts of `url`, or SmtpURLError in one line that shows no part of it."""
    read = parse_server_url(
        url, ports=DEFAULT_PORTS, form=FORM, kind="SMTP", options=OPTIONS, error=SmtpURLError
    )
    if read.path:
        raise SmtpURLError("an SMTP URL has no path after the host and port")
    return SmtpURL(
        host=read.host,
        port=read.port,
        implicit_tls=read.implicit_tls,
        username=read.username,
        password=read.password,
        ca_file=read.option("ca_file"),
        timeout=read.timeout,
        plaintext=read.plaintext,
    )


class Outcome(StrEnum):
    DELIVERED = "delivered"  # the server took the message for every recipient it did not refuse
    REFUSED = "refused"  # every recipient refused for good (5xx): check the addresses
    FAILED = "failed"  # refused for good for another reason (login, TLS, sender, content)
    TEMPORARY = "temporary"  # nothing was delivered, and trying again later may pass (4xx)
    UNKNOWN = "unknown"  # the connection ended after the message was handed over


@dataclass(frozen=True)
class SendResult:
    """What became of one message. `refused` names each recipient the server refused, with its
    answer (a delivered message may still have refused some of its recipients)."""

    outcome: Outcome
    reason: str = ""
    refused: tuple[tuple[str, str], ...] = ()

    @property
    def retry(self) -> bool:
        """Trying again may deliver it (for UNKNOWN: resent with the same Message-ID)."""
        return self.outcome in (Outcome.TEMPORARY, Outcome.UNKNOWN)


class SmtpSender:
    """Sends messages through the server of one SMTP URL, one connection per message."""

    def __init__(self, url: SmtpURL, *, local_hostname: str | None = None) -> None:
        self.url = url
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"SmtpSender({self.url})"

    def send(self, message: bytes, sender: str, recipients: Sequence[str]) -> SendResult:
        """Hand `message` (its exact bytes, CRLF line endings) to the server for `recipients`,
        with `sender` as the envelope's return address."""
        if not recipients:
            return SendResult(Outcome.FAILED, "the letter has no recipient")
        return self._session(
            lambda conn, stage: self._transaction(conn, stage, message, sender, recipients)
        )

    def check(self) -> str | None:
        """Connect, secure the connection and log in, then leave without sending anything:
        None when all of it worked, else what went wrong (the same words as a send's)."""
        result = self._session(lambda conn, stage: SendResult(Outcome.DELIVERED))
        return None if result.outcome is Outcome.DELIVERED else result.reason

    def _session(self, work: Callable[[smtplib.SMTP, list[str]], SendResult]) -> SendResult:
        """`work` on a connection that is secured and logged in, its failures told as outcomes.
        `work` keeps `stage[0]` saying where in the transaction it is."""
        stage = ["connect"]
        conn: smtplib.SMTP | None = None
        try:
            conn = self._connect()
            stage[0] = "hello"
            self._secure_and_log_in(conn)
            stage[0] = "envelope"
            return work(conn, stage)
        except ssl.SSLCertVerificationError as e:
            return SendResult(
                Outcome.FAILED,
                f"the server's certificate is not trusted ({self._text(e.verify_message)}): "
                "give its CA with ?ca_file= in WARROOM_SMTP_URL",
            )
        except smtplib.SMTPAuthenticationError as e:
            return self._refusal(e.smtp_code, e.smtp_error, "the login (user and password)")
        except smtplib.SMTPNotSupportedError as e:
            return SendResult(Outcome.FAILED, f"the server cannot do this: {self._text(str(e))}")
        except smtplib.SMTPResponseException as e:
            return self._refusal(e.smtp_code, e.smtp_error, _STAGES[stage[0]])
        except (smtplib.SMTPException, OSError) as e:
            what = type(e).__name__
            if stage[0] in ("data", "done"):
                return SendResult(
                    Outcome.UNKNOWN,
                    f"the connection ended after the message was handed over ({what}): "
                    "it may have been delivered",
                )
            where = f"{self.url.host}:{self.url.port}"
            return SendResult(
                Outcome.TEMPORARY, f"{where} failed at {_STAGES[stage[0]]} ({what}): nothing sent"
            )
        finally:
            if conn is not None:
                self._close(conn)

    def _transaction(
        self,
        conn: smtplib.SMTP,
        stage: list[str],
        message: bytes,
        sender: str,
        recipients: Sequence[str],
    ) -> SendResult:
        code, answer = conn.mail(sender)
        if code != 250:
            return self._refusal(code, answer, f"the sending address {sender}")
        refused = []
        for rcpt in recipients:
            code, answer = conn.rcpt(rcpt)
            if code not in (250, 251):
                refused.append((rcpt, self._answer(code, answer)))
        later = [(rcpt, answer) for rcpt, answer in refused if not answer.startswith("5")]
        if later:
            # A recipient the server will take later: nobody gets it now, so the next try
            # sends it to everyone once (rather than the others twice).
            conn.rset()
            names = "; ".join(f"{rcpt}: {answer}" for rcpt, answer in later)
            return SendResult(
                Outcome.TEMPORARY, f"recipients not taken now: {names}", tuple(refused)
            )
        if len(refused) == len(recipients):
            names = "; ".join(f"{rcpt}: {answer}" for rcpt, answer in refused)
            return SendResult(Outcome.REFUSED, f"every recipient refused: {names}", tuple(refused))
        stage[0] = "data"
        code, answer = conn.data(message)
        stage[0] = "done"
        if code != 250:
            return self._refusal(code, answer, "the message")
        return SendResult(Outcome.DELIVERED, self._answer(code, answer), tuple(refused))

    def _connect(self) -> smtplib.SMTP:
        url = self.url
        if url.implicit_tls:
            return smtplib.SMTP_SSL(
                url.host,
                url.port,
                local_hostname=self.local_hostname,
                timeout=url.timeout,
                context=self._context(),
            )
        return smtplib.SMTP(
            url.host, url.port, local_hostname=self.local_hostname, timeout=url.timeout
        )

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.url.ca_file)

    def _secure_and_log_in(self, conn: smtplib.SMTP) -> None:
        conn.ehlo()
        if not self.url.implicit_tls and not self.url.plaintext:
            if not conn.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("it offers no STARTTLS, and TLS is required")
            conn.starttls(context=self._context())
            conn.ehlo()
        if self.url.username is not None:
            conn.login(self.url.username, self.url.password or "")

    @staticmethod
    def _close(conn: smtplib.SMTP) -> None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            # The message's fate was decided before QUIT: a connection lost now changes nothing.
            conn.close()

    def _refusal(self, code: int, answer: bytes | str, what: str) -> SendResult:
        text = self._answer(code, answer)
        if 400 <= code < 500:
            return SendResult(Outcome.TEMPORARY, f"{what} not taken now: {text}")
        return SendResult(Outcome.FAILED, f"{what} refused: {text}")

    def _answer(self, code: int, answer: bytes | str) -> str:
        return f"{code} {self._text(answer)}".strip()

    def _text(self, answer: bytes | str | None) -> str:
        """A server's answer fit for a log line and a person: one line, no password in it."""
        if answer is None:
            return ""
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
        text = " ".join(text.split())
        password = self.url.password
        if password:
            for form in {password, quote(password, safe="")}:
                text = text.replace(form, "***")
        return text[:300]
