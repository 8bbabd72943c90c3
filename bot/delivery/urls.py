"""The one way a mail server's URL is read (`WARROOM_SMTP_URL`, `WARROOM_IMAP_URL`) and shown.

Both take a user and a password, a host and port, `?ca_file=`, `?timeout=` and `?tls=off`
(plain text, only to a server on this machine). Every message about a bad URL is one line that
quotes no part of it: a password with an unencoded `@`, `?` or `#` spills into the host, the
query or the fragment, so even an option's name may be a password's tail.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_TIMEOUT = 30.0
OPTIONS = frozenset({"ca_file", "timeout", "tls"})
_LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True)
class ServerURL:
    """What every mail server's URL says, checked."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    path: str  # unquoted, without its leading "/"
    options: dict[str, list[str]]
    timeout: float
    plaintext: bool

    @property
    def implicit_tls(self) -> bool:
        return self.scheme.endswith("s")

    def option(self, name: str) -> str | None:
        return self.options.get(name, [""])[-1] or None


def parse_server_url(
    url: str,
    *,
    ports: dict[str, int],
    form: str,
    kind: str,
    options: frozenset[str],
    error: Callable[[str], ValueError],
) -> ServerURL:
    """The parts of `url` for a server of `kind` ("SMTP", "IMAP") whose schemes are `ports`'
    keys (the plain one first, then the TLS one), or `error(message)` in one line."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise error(f"not an {kind} URL: {form}") from None
    scheme = parts.scheme.lower()
    plain, secure = ports
    if scheme not in ports:
        raise error(f"an {kind} URL starts with {plain}:// or {secure}://: {form}")
    if not parts.hostname:
        raise error(f"it names no host: {form}")
    given = parse_qs(parts.query, keep_blank_values=True)
    if given.keys() - options:
        # Not named: it may be a password's tail (an unencoded "?" in it).
        takes = sorted(options - {"tls"})
        raise error(
            f"an unknown option (it takes {', '.join(takes)} and tls; percent-encode a "
            "password's special characters)"
        )
    read = ServerURL(scheme, parts.hostname, 0, None, None, "", given, DEFAULT_TIMEOUT, False)
    timeout = DEFAULT_TIMEOUT
    if read.option("timeout") is not None:
        try:
            timeout = float(read.option("timeout") or "")
        except ValueError:
            raise error("timeout is a number of seconds") from None
        if not 0 < timeout <= 600:
            raise error("timeout is between 0 and 600 seconds")
    tls = read.option("tls")
    if tls not in (None, "off"):
        raise error("tls takes only 'off' (TLS is on otherwise)")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if not (username or "").isascii() or not (password or "").isascii():
        # Logins go as ASCII: another character would fail at every connection.
        raise error("the user and password must be ASCII characters (percent-encoded)")
    if tls == "off" and (scheme == secure or not is_loopback(parts.hostname)):
        raise error(f"tls=off is only for an {plain}:// server on this machine (127.0.0.1)")
    return ServerURL(
        scheme=scheme,
        host=parts.hostname,
        port=port or ports[scheme],
        username=username,
        password=password,
        path=unquote(parts.path.lstrip("/")),
        options=given,
        timeout=timeout,
        plaintext=tls == "off",
    )


def shown(
    scheme: str,
    username: str | None,
    password: str | None,
    host: str,
    port: int,
    path: str = "",
    *,
    ca_file: str | None = None,
    plaintext: bool = False,
) -> str:
    """The URL as logs and messages may show it: the password as `***`."""
    auth = ""
    if username is not None:
        auth = quote(username, safe="") + (":***" if password else "") + "@"
    where = f"[{host}]" if ":" in host else host
    options = [f"ca_file={ca_file}"] if ca_file else []
    options += ["tls=off"] if plaintext else []
    query = "?" + "&".join(options) if options else ""
    tail = f"/{quote(path, safe='')}" if path else ""
    return f"{scheme}://{auth}{where}:{port}{tail}{query}"


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
