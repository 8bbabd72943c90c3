"""An IMAP server on this machine: a threaded socket server on a free 127.0.0.1 port holding
one mailbox in memory (the team's shared support mailbox), answering the commands a mail
reader uses, and failing what a test says, when it says.

`ImapServer(tls=..., implicit_tls=..., users={...}).start()`; `.port`; `.url(user, password)`;
`.deliver(raw)` puts a message in the mailbox (its UID back); `.flags(uid)`; `.commands` (every
command as received, passwords blanked).

- `tls`: a server `ssl.SSLContext`. With `implicit_tls` the connection is TLS from the first
  byte (imaps); without, the server offers STARTTLS and refuses a login before it. Without
  `tls`, plain IMAP (a local sandbox).
- `users`: the logins it accepts (user -> password); any other is refused (NO).
- `drop_on(command, times, uid=None)`: the next `times` such commands (FETCH, STORE, SEARCH,
  SELECT) are cut off: half an answer, then the connection closes; with `uid`, every fetch of
  that one message's whole body (a message the client can never read).
- `refuse_connections(times)`: the next `times` connections close at once (the server down).

Supported: CAPABILITY, NOOP, STARTTLS, LOGIN, SELECT, UID SEARCH (ALL, UID set, SINCE,
UNSEEN, UNKEYWORD), UID FETCH (UID, FLAGS, BODY[]/BODY.PEEK[] and [HEADER]), UID STORE
(+FLAGS, +FLAGS.SILENT), LOGOUT. A FETCH without PEEK marks the message \\Seen, as servers do.
"""

from __future__ import annotations

import contextlib
import re
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

__all__ = ["ImapServer"]

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\([^)]*\))|(\S+)')
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
UIDVALIDITY = 1776


@dataclass
class _Message:
    uid: int
    raw: bytes
    arrived: date
    flags: set[str] = field(default_factory=set)


def _tokens(text: str) -> list[str]:
    out = []
    for quoted, group, atom in _TOKEN.findall(text):
        if quoted or (not group and not atom):
            out.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            out.append(group or atom)
    return out


def _uid_set(spec: str, uids: list[int]) -> set[int]:
    top = max(uids, default=0)
    wanted: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition(":")
        a = top if low == "*" else int(low)
        b = a if not high else (top if high == "*" else int(high))
        lo, hi = min(a, b), max(a, b)
        wanted.update(u for u in uids if lo <= u <= hi)
    return wanted


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        owner = self.server.owner
        if owner.implicit_tls and owner.tls is not None:
            self.request = owner.tls.wrap_socket(self.request, server_side=True)
            self.secure = True
        else:
            self.secure = False
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            # A socket wrapped for TLS is its own object: socketserver closes only the one
            # it accepted.
            with contextlib.suppress(OSError):
                self.request.close()

    def _send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.wfile.write(data + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        owner = self.server.owner
        if owner._take("connect"):
            return
        self.logged_in = False
        self._send("* OK [CAPABILITY IMAP4rev1] loopback IMAP ready")
        while True:
            try:
                line = self.rfile.readline(65536)
            except (OSError, ssl.SSLError):
                return
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            tag, _, rest = text.partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "UID":
                sub, _, args = args.partition(" ")
                command = f"UID {sub.upper()}"
            owner._record(tag, command, args)
            try:
                if not self._dispatch(tag, command, args):
                    return
            except (OSError, ssl.SSLError):
                return
            except Exception:
                self._send(f"{tag} BAD could not do that")

    def _dispatch(self, tag: str, command: str, args: str) -> bool:
        owner = self.server.owner
        starttls = owner.tls is not None and not owner.implicit_tls and not self.secure
        if command == "CAPABILITY":
            caps = "IMAP4rev1" + (" STARTTLS LOGINDISABLED" if starttls else "")
            self._send(f"* CAPABILITY {caps}")
            self._send(f"{tag} OK CAPABILITY completed")
        elif command == "NOOP":
            self._send(f"{tag} OK NOOP completed")
        elif command == "LOGOUT":
            self._send("* BYE logging out")
            self._send(f"{tag} OK LOGOUT completed")
            return False
        elif command == "STARTTLS" and starttls:
            self._send(f"{tag} OK Begin TLS negotiation now")
            assert owner.tls is not None
            self.request = owner.tls.wrap_socket(self.request, server_side=True)
            self.secure = True
            self.rfile = self.request.makefile("rb")
            self.wfile = self.request.makefile("wb")
        elif command == "LOGIN":
            user, password = ([*_tokens(args), "", ""])[:2]
            if starttls:
                self._send(f"{tag} NO [PRIVACYREQUIRED] STARTTLS first")
            elif owner.users.get(user) == password and user:
                self.logged_in = True
                owner._logins.append((user, self.secure))
                self._send(f"{tag} OK LOGIN completed")
            else:
                self._send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
        elif not self.logged_in:
            self._send(f"{tag} BAD log in first")
        elif command in ("SELECT", "EXAMINE"):
            if owner._take("SELECT"):
                self._send("* 3 EXI")
                return False
            with owner._lock:
                count, top = len(owner._messages), max(owner._uids(), default=0)
            self._send(f"* {count} EXISTS")
            self._send("* 0 RECENT")
            self._send(f"* OK [UIDVALIDITY {owner.uidvalidity}] UIDs valid")
            self._send(f"* OK [UIDNEXT {top + 1}] next UID")
            self._send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
            permanent = "\\Seen \\Flagged \\*" if owner.keywords else "\\Seen \\Flagged"
            self._send(f"* OK [PERMANENTFLAGS ({permanent})] flags kept")
            self._send(f"{tag} OK [READ-WRITE] SELECT completed")
        elif command == "UID SEARCH":
            if owner._take("SEARCH"):
                self._send("* SEA")
                return False
            found = owner._search(_tokens(args))
            self._send("* SEARCH" + "".join(f" {u}" for u in found))
            self._send(f"{tag} OK SEARCH completed")
        elif command == "UID FETCH":
            spec, _, items = args.partition(" ")
            return self._fetch(tag, spec, items.upper())
        elif command == "UID STORE":
            if owner._take("STORE"):
                return False
            spec, how, flags = ([*_tokens(args), "", "", ""])[:3]
            names = set(flags.strip("()").split())
            with owner._lock:
                for m in owner._messages:
                    if m.uid in _uid_set(spec, owner._uids()) and how.upper().startswith("+"):
                        m.flags |= names
                        if not how.upper().endswith(".SILENT"):
                            self._send(f"* {m.uid} FETCH (UID {m.uid})")
            self._send(f"{tag} OK STORE completed")
        else:
            self._send(f"{tag} BAD unknown command")
        return True

    def _fetch(self, tag: str, spec: str, items: str) -> bool:
        owner = self.server.owner
        header = "[HEADER]" in items
        peek = ".PEEK" in items
        with owner._lock:
            wanted = _uid_set(spec, owner._uids())
            chosen = [(n, m) for n, m in enumerate(owner._messages, 1) if m.uid in wanted]
        for n, m in chosen:
            data = m.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if header else m.raw
            if owner._take("FETCH") or (not header and owner._take(f"FETCH:{m.uid}")):
                self.wfile.write(f"* {n} FETCH (UID {m.uid} BODY[] {{{len(data)}}}\r\n".encode())
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                return False
            if not peek:
                with owner._lock:
                    m.flags.add("\\Seen")
            section = "BODY[HEADER]" if header else "BODY[]"
            flags = " ".join(sorted(m.flags))
            self.wfile.write(
                f"* {n} FETCH (UID {m.uid} FLAGS ({flags}) {section} {{{len(data)}}}\r\n".encode()
            )
            self.wfile.write(data)
            self._send(")")
        self._send(f"{tag} OK FETCH completed")
        return True


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ImapServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (a refused certificate, a dropped line): nothing to say


class ImapServer:
    """One mailbox over IMAP on 127.0.0.1 (see the module's docstring)."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        keywords: bool = True,
    ) -> None:
        self.tls = tls
        self.implicit_tls = implicit_tls and tls is not None
        self.users = dict(users or {})
        self.keywords = keywords
        self.uidvalidity = UIDVALIDITY
        self._lock = threading.Lock()
        self._messages: list[_Message] = []
        self._next_uid = 1
        self._faults: dict[str, int] = {}
        self._commands: list[tuple[str, str]] = []
        self._logins: list[tuple[str, bool]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ImapServer:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ImapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, user: str, password: str, **options: str) -> str:
        """An `imap://` or `imaps://` URL of this server (user and password as given)."""
        scheme = "imaps" if self.implicit_tls else "imap"
        if self.tls is None:
            options = {"tls": "off", **options}
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"{scheme}://{user}:{password}@127.0.0.1:{self.port}/INBOX" + (
            f"?{query}" if query else ""
        )

    def deliver(self, raw: bytes, *, arrived: date | None = None) -> int:
        """Put a message in the mailbox, as the mail system would; its UID."""
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with self._lock:
            uid = self._next_uid
            self._next_uid += 1
            self._messages.append(_Message(uid, raw, arrived or datetime.now(UTC).date()))
            return uid

    def flags(self, uid: int) -> set[str]:
        with self._lock:
            return set(next(m.flags for m in self._messages if m.uid == uid))

    def uids(self) -> list[int]:
        with self._lock:
            return self._uids()

    @property
    def commands(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._commands)

    @property
    def logins(self) -> list[tuple[str, bool]]:
        return list(self._logins)

    def drop_on(self, command: str, times: int = 1, *, uid: int | None = None) -> None:
        """Cut the next `times` such commands off; with `uid` (FETCH only), each fetch of
        that message's whole body."""
        with self._lock:
            self._faults[command.upper() + (f":{uid}" if uid is not None else "")] = times

    def refuse_connections(self, times: int = 1) -> None:
        with self._lock:
            self._faults["connect"] = times

    # -- the handler's side --------------------------------------------------------------------
    def _uids(self) -> list[int]:
        return [m.uid for m in self._messages]

    def _take(self, fault: str) -> bool:
        with self._lock:
            left = self._faults.get(fault, 0)
            if left:
                self._faults[fault] = left - 1
            return bool(left)

    def _record(self, tag: str, command: str, args: str) -> None:
        if command == "LOGIN":
            args = ([*_tokens(args), ""])[0] + " ***"
        with self._lock:
            self._commands.append((command, args))

    def _search(self, criteria: list[str]) -> list[int]:
        with self._lock:
            found = list(self._messages)
            uids = self._uids()
        i = 0
        while i < len(criteria):
            word = criteria[i].upper()
            if word == "UID":
                wanted = _uid_set(criteria[i + 1], uids)
                found = [m for m in found if m.uid in wanted]
                i += 2
            elif word == "SINCE":
                day, month, year = criteria[i + 1].split("-")
                since = date(int(year), _MONTHS.index(month) + 1, int(day))
                found = [m for m in found if m.arrived >= since]
                i += 2
            elif word == "UNKEYWORD":
                found = [m for m in found if criteria[i + 1] not in m.flags]
                i += 2
            elif word == "UNSEEN":
                found = [m for m in found if "\\Seen" not in m.flags]
                i += 1
            elif word == "ALL":
                i += 1
            else:
                raise ValueError(f"unsupported search key {word}")
        return [m.uid for m in found]
