"""The reply mailbox over IMAP against a real server on this machine (loopback/imap.py): TLS
from the first byte or by STARTTLS with a throwaway CA, the login, reading without marking
anything read, the flag on what was ours, and every failure as one line without the
password."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.delivery.imap import ImapError, Mailbox, parse_imap_url
from loopback.imap import ImapServer
from tests.integration.test_email_delivery import _server_context, certs  # noqa: F401

USER = "replies@vendor.example"
PASSWORD = 'pa:ss@w"rd'
MESSAGE = b"Message-ID: <m1@initech.example>\r\nSubject: hello\r\n\r\nThe body\r\n"
LONG_AGO = date(2020, 1, 1)


def _url(server: ImapServer, certs: Path, password: str = PASSWORD) -> str:  # noqa: F811
    return server.url(quote(USER, safe=""), quote(password, safe=""), ca_file=str(certs / "ca.crt"))


@pytest.fixture
def imaps(certs: Path) -> Iterator[ImapServer]:  # noqa: F811
    with ImapServer(tls=_server_context(certs), implicit_tls=True, users={USER: PASSWORD}) as s:
        yield s


@pytest.fixture
def starttls(certs: Path) -> Iterator[ImapServer]:  # noqa: F811
    with ImapServer(tls=_server_context(certs), users={USER: PASSWORD}) as s:
        yield s


def test_implicit_tls_reads_without_marking_read_and_flags_only_what_it_is_told(
    imaps: ImapServer,
    certs: Path,  # noqa: F811
) -> None:
    first = imaps.deliver(MESSAGE)
    second = imaps.deliver(MESSAGE.replace(b"m1@", b"m2@"))
    with Mailbox(parse_imap_url(_url(imaps, certs))).session() as session:
        assert session.since(None, LONG_AGO) == [first, second]
        assert session.since(first, LONG_AGO) == [second]
        assert session.since(second, LONG_AGO) == []  # "N:*" names the newest even below N
        heads = session.headers([first, second])
        assert heads[first].startswith(b"Message-ID: <m1@") and b"The body" not in heads[first]
        assert session.message(second) == MESSAGE.replace(b"m1@", b"m2@")
        session.mark(second)
    assert imaps.flags(first) == set()  # read, still unread
    assert imaps.flags(second) == {"$warroom"}
    assert imaps.logins == [(USER, True)]


def test_starttls_comes_before_the_login(starttls: ImapServer, certs: Path) -> None:  # noqa: F811
    starttls.deliver(MESSAGE)
    with Mailbox(parse_imap_url(_url(starttls, certs))).session() as session:
        assert session.since(None, LONG_AGO) == [1]
    assert starttls.logins == [(USER, True)]
    assert [c for c, _ in starttls.commands][:3] == ["CAPABILITY", "STARTTLS", "CAPABILITY"]


def test_a_server_without_starttls_is_not_logged_in_to() -> None:
    with ImapServer(users={USER: PASSWORD}) as plain:
        url = f"imap://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{plain.port}"
        with (
            pytest.raises(ImapError, match="offers no STARTTLS"),
            Mailbox(parse_imap_url(url)).session(),
        ):
            pass
        assert plain.logins == [] and "LOGIN" not in [c for c, _ in plain.commands]


def test_a_certificate_from_an_unknown_ca_is_refused(imaps: ImapServer) -> None:
    url = imaps.url(quote(USER, safe=""), quote(PASSWORD, safe=""))  # the system's CAs
    with (
        pytest.raises(ImapError, match="not trusted") as caught,
        Mailbox(parse_imap_url(url)).session(),
    ):
        pass
    assert PASSWORD not in str(caught.value)


def test_a_refused_login_is_one_line_without_the_password(
    imaps: ImapServer,
    certs: Path,  # noqa: F811
) -> None:
    wrong = 'wr"ong:p@ss'
    with (
        pytest.raises(ImapError) as caught,
        Mailbox(parse_imap_url(_url(imaps, certs, wrong))).session(),
    ):
        pass
    message = str(caught.value)
    assert "AUTHENTICATIONFAILED" in message and "\n" not in message
    assert "ong:p@ss" not in message and quote(wrong, safe="") not in message
    assert imaps.logins == []


def test_a_connection_dropped_mid_fetch_changes_nothing(
    imaps: ImapServer,
    certs: Path,  # noqa: F811
) -> None:
    uid = imaps.deliver(MESSAGE)
    imaps.drop_on("FETCH")
    mailbox = Mailbox(parse_imap_url(_url(imaps, certs)))
    with pytest.raises(ImapError), mailbox.session() as session:
        session.message(uid)
    assert imaps.flags(uid) == set()
    with mailbox.session() as session:  # the next session reads it whole
        assert session.message(uid) == MESSAGE


def test_a_server_that_keeps_no_keywords_is_given_seen(certs: Path) -> None:  # noqa: F811
    context = _server_context(certs)
    with ImapServer(tls=context, implicit_tls=True, users={USER: PASSWORD}, keywords=False) as s:
        uid = s.deliver(MESSAGE)
        with Mailbox(parse_imap_url(_url(s, certs))).session() as session:
            session.mark(uid)
        assert s.flags(uid) == {"\\Seen"}


def test_a_server_that_is_down_is_an_imap_error(imaps: ImapServer, certs: Path) -> None:  # noqa: F811
    imaps.refuse_connections()
    with pytest.raises(ImapError) as caught, Mailbox(parse_imap_url(_url(imaps, certs))).session():
        pass
    assert PASSWORD not in str(caught.value)
