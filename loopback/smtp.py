"""A mail server on this machine: aiosmtpd in a thread, on a free 127.0.0.1 port, keeping every
message it receives in memory (the customer's inbox, as their mail client would group it), and
failing what a test says, when it says.

`MailServer(tls=..., implicit_tls=..., users={...}).start()`; `.port`; `.received`;
`.inbox(address)` and `.threads(address)`; `.wait_for(count)`.

- `tls`: a server `ssl.SSLContext`. With `implicit_tls` the connection is TLS from the first
  byte (smtps); without, the server offers STARTTLS and requires it before anything else.
  Without `tls`, plain SMTP (a local sandbox server).
- `users`: logins the server accepts (user -> password); with any, every message needs one.
- `refuse(address, code, text)`: that recipient is refused for good (5xx) or for now (4xx).
- `fail(command, code, text, times)`: the next `times` MAIL, RCPT or DATA commands answer so.
- `drop_after_data(times)`: the next `times` messages are taken and kept, then the connection
  is closed before the answer is sent: the client cannot know it was delivered.
- `hold()`: DATA waits for `release()` before answering (two senders at once).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["MailServer", "Received"]


@dataclass(frozen=True)
class Received:
    """One message as the server took it: the envelope and the exact bytes of the content."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes
    login: str | None = None
    tls: bool = False

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.content)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", ""))

    def shown(self) -> dict[str, str]:
        """What the recipient's mail client shows of it: the headers a person reads, and the
        plain text (the HTML alternative as it came, for a client that renders it)."""
        msg = self.message
        plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
        return {
            "from": str(msg.get("From", "")),
            "reply_to": str(msg.get("Reply-To", "")),
            "to": str(msg.get("To", "")),
            "cc": str(msg.get("Cc", "")),
            "subject": str(msg.get("Subject", "")),
            "date": str(msg.get("Date", "")),
            "message_id": self.message_id,
            "text": plain.get_content().replace("\r\n", "\n") if plain else "",
            "html": html.get_content().replace("\r\n", "\n") if html else "",
        }


@dataclass
class _Fault:
    code: int
    text: str
    times: int


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    faults: dict[str, list[_Fault]] = field(default_factory=lambda: defaultdict(list))
    drops: int = 0
    logins: list[tuple[str, bool]] = field(default_factory=list)


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    def _fault(self, command: str) -> str | None:
        with self.server._lock:
            faults = self.server._state.faults[command]
            if not faults:
                return None
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.pop(0)
            return f"{fault.code} {fault.text}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        answer = self._fault("MAIL")
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        answer = self._fault("RCPT")
        if answer:
            return answer
        with self.server._lock:
            refused = self.server._state.refused.get(address.lower())
        if refused:
            return f"{refused[0]} {refused[1]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        taken = self.server._hold_taken
        if self.server._held.is_set() and not taken:
            await self._wait_released()
        answer = self._fault("DATA")
        if answer:
            return answer
        login = session.auth_data.login.decode() if session.authenticated else None
        received = Received(
            sender=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            content=bytes(envelope.original_content or b""),
            login=login,
            tls=server.transport.get_extra_info("sslcontext") is not None,
        )
        with self.server._lock:
            self.server._state.received.append(received)
            drop = self.server._state.drops > 0
            if drop:
                self.server._state.drops -= 1
            self.server._arrived.notify_all()
        if self.server._held.is_set() and taken:
            await self._wait_released()  # kept: the client has not heard so yet
        if drop:
            # Kept, but the client never hears so: the connection goes before the answer.
            server.transport.abort()
        return "250 Message accepted for delivery"

    async def _wait_released(self) -> None:
        self.server._holding.set()
        await asyncio.get_running_loop().run_in_executor(None, self.server._released.wait, 30)


class _QuietLogin(logging.Filter):
    """aiosmtpd 1.4 warns of its own deprecated `login_data` at every login it accepts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


_AIOSMTPD_LOG = logging.getLogger("mail.log")


class _Controller(Controller):
    """aiosmtpd's controller on a port the system picks (its own needs one given)."""

    login_without_starttls = False

    def factory(self) -> SMTP:
        smtp = super().factory()
        if self.login_without_starttls:
            # Set after construction: asking the constructor for it warns (an error in tests),
            # and the warning is about plain connections, which only a local server has.
            smtp._auth_require_tls = False
        return smtp

    async def _serve(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _create_server(self) -> Any:
        return self._serve()


class MailServer:
    """An SMTP server on 127.0.0.1 that keeps what it receives (see the module's docstring)."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.tls = tls
        self.implicit_tls = implicit_tls and tls is not None
        self.users = dict(users or {})
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._state = _State()
        self._held = threading.Event()
        self._hold_taken = False
        self._released = threading.Event()
        self._holding = threading.Event()
        kwargs: dict[str, Any] = {"hostname": host, "server_hostname": "mail.loopback.test"}
        if self.implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs.update(tls_context=tls, require_starttls=True)
        if self.users:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
            )
        self._controller = _Controller(_Handler(self), **kwargs)
        if not any(isinstance(f, _QuietLogin) for f in _AIOSMTPD_LOG.filters):
            _AIOSMTPD_LOG.addFilter(_QuietLogin())
        # With STARTTLS, a login only after it. A plain local server takes one without; under
        # implicit TLS everything is encrypted already (aiosmtpd, which only knows of STARTTLS,
        # would never offer AUTH there).
        self._controller.login_without_starttls = tls is None or self.implicit_tls

    def start(self) -> MailServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._controller.stop()

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def url(self, user: str | None = None, password: str | None = None, **options: str) -> str:
        """An `smtp://` or `smtps://` URL of this server (user and password as given: encode
        them first if they need it)."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        auth = f"{user}:{password}@" if user is not None and password is not None else ""
        if self.tls is None:
            options = {"tls": "off", **options}
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"{scheme}://{auth}{self.host}:{self.port}" + (f"?{query}" if query else "")

    # --- what it received ---------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._state.received)

    @property
    def logins(self) -> list[tuple[str, bool]]:
        """Each login tried: (user, accepted)."""
        with self._lock:
            return list(self._state.logins)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages received, once there are at least `count` (TimeoutError if not)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._state.received) >= count, timeout):
                raise TimeoutError(f"{len(self._state.received)} messages, not {count}")
            return list(self._state.received)

    def inbox(self, address: str) -> list[Received]:
        """Messages for `address` (To, Cc or the envelope), once per Message-ID, in order of
        arrival: what their mail client shows."""
        wanted = address.lower()
        seen: set[str] = set()
        found = []
        for r in self.received:
            if wanted not in (a.lower() for a in r.recipients):
                continue
            mid = r.message_id
            if mid and mid in seen:
                continue
            seen.add(mid)
            found.append(r)
        return found

    def threads(self, address: str) -> list[list[Received]]:
        """`inbox(address)` grouped into threads: by the first Message-ID of `References`
        (or the message's own id when it starts one), each thread in order of arrival."""
        groups: dict[str, list[Received]] = {}
        for r in self.inbox(address):
            references = str(r.message.get("References", "")).split()
            root = references[0] if references else r.message_id
            groups.setdefault(root, []).append(r)
        return list(groups.values())

    def __iter__(self) -> Iterator[Received]:
        return iter(self.received)

    # --- faults ---------------------------------------------------------------------------------

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 No such user") -> None:
        with self._lock:
            self._state.refused[address.lower()] = (code, text)

    def fail(
        self, command: str, code: int = 451, text: str = "4.3.0 Try again later", *, times: int = 1
    ) -> None:
        command = command.upper()
        if command not in ("MAIL", "RCPT", "DATA"):
            raise ValueError("fail() takes MAIL, RCPT or DATA")
        with self._lock:
            self._state.faults[command].append(_Fault(code, text, times))

    def drop_after_data(self, times: int = 1) -> None:
        with self._lock:
            self._state.drops += times

    def hold(self, *, taken: bool = False) -> None:
        """Hold the next DATA before its answer until `release` (`taken`: the message is
        kept first, as a server that has it and is slow to say so)."""
        self._hold_taken = taken
        self._released.clear()
        self._holding.clear()
        self._held.set()

    def wait_holding(self, timeout: float = 10.0) -> None:
        """Until a DATA is being held (TimeoutError if none comes)."""
        if not self._holding.wait(timeout):
            raise TimeoutError("no message reached DATA")

    def release(self) -> None:
        self._held.clear()
        self._released.set()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        ok = user in self.users and self.users[user] == password
        with self._lock:
            self._state.logins.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=data)
