"""Email delivery end to end: letters built as messages, sent through the outbox by smtplib to a
real SMTP server on this machine (aiosmtpd, TLS from a CA made here with the openssl command,
a login required), the outbox's records in the real Redis."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from bot.delivery.mail import Letter, build_message
from bot.delivery.outbox import Delivery, LetterKey, Outbox, OutboxError, Status, Step
from bot.delivery.smtp import Outcome, SendResult, SmtpSender, parse_smtp_url
from loopback.smtp import MailServer

USER = "mailer@vendor.example"
# Every character a URL must percent-encode, and one a log line would show plainly.
PASSWORD = "p@ss:w/rd%+?#S3cr3t"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TO = "dana.whitfield@initech.example"
CC = "ops-leads@initech.example"
TEXT = (
    "Subject: Update on the service issue affecting Initech\n\n"
    "Dear Ms Whitfield,\n\n"
    "Exports are failing for some of your team; the CSV export works in the meantime.\n"
    "Next update by 14:00 your time.\n\n"
    "Kind regards,\nVictoria Vance\n"
)


# --- a CA of our own, and servers with its certificate -------------------------------------------


def _openssl(args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args.split()], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("smtp-tls")
    key = "-newkey rsa:2048 -nodes -days 2"
    _openssl(f"req -x509 {key} -subj /CN=warroom-test-mail-CA -keyout ca.key -out ca.crt", folder)
    _openssl(f"req {key} -subj /CN=127.0.0.1 -keyout server.key -out server.csr", folder)
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile san.cnf -out server.crt",
        folder,
    )
    return folder


def _server_context(certs: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.crt", certs / "server.key")
    return context


@pytest.fixture
def mail(certs: Path) -> Iterator[MailServer]:
    """STARTTLS required, a login required."""
    with MailServer(tls=_server_context(certs), users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def smtps(certs: Path) -> Iterator[MailServer]:
    """TLS from the first byte, a login required."""
    with MailServer(tls=_server_context(certs), implicit_tls=True, users={USER: PASSWORD}) as s:
        yield s


def _url(server: MailServer, certs: Path, password: str = PASSWORD, **options: str) -> str:
    return server.url(
        quote(USER, safe=""), quote(password, safe=""), ca_file=str(certs / "ca.crt"), **options
    )


def _sender(url: str) -> SmtpSender:
    return SmtpSender(parse_smtp_url(url), local_hostname="warroom.test")


@pytest.fixture
def outbox(redis_client: redis.Redis, prefix: str) -> Outbox:
    return Outbox(redis_client, prefix)


def _message(
    number: int = 1,
    *,
    to: str = TO,
    cc: tuple[str, ...] = (CC,),
    text: str = TEXT,
    first_subject: str | None = None,
    at: datetime = T0,
):
    letter = Letter(
        text=text,
        escalation="esc-20260302-initech",
        number=number,
        signer="Victoria Vance",
        sender="support@vendor.example",
        reply_to="escalations@vendor.example",
        to=to,
        cc=cc,
        first_subject=first_subject,
    )
    return build_message(letter, at)


KEY = LetterKey("esc-20260302-initech", "draft-1", 1)


# --- TLS and login -------------------------------------------------------------------------------


def test_starttls_with_a_login_delivers_the_exact_bytes(
    mail: MailServer, certs: Path, outbox: Outbox
) -> None:
    # Lines SMTP itself gives a meaning to (a lone dot ends the message) arrive as written.
    text = TEXT.replace("Kind regards", ".\n..\n.hidden\nFrom here on\n\nKind regards")
    message = _message(text=text)
    done = outbox.deliver(KEY, message, _sender(_url(mail, certs)))
    assert done.step is Step.SENT, done.record.reason
    record = done.record
    assert record.status is Status.SENT and record.outcome is Outcome.DELIVERED
    assert record.attempts == 1 and record.sent_at is not None
    [received] = mail.received
    assert received.tls and received.login == USER
    assert received.sender == "support@vendor.example"
    assert set(received.recipients) == {TO, CC}
    # Byte for byte: what the outbox recorded is what the server took.
    assert received.content == record.message == message.as_bytes()
    assert received.message_id == record.message_id == str(message["Message-ID"])
    body = received.message.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == text.split("\n\n", 1)[1]
    assert mail.logins == [(USER, True)]


def test_implicit_tls_with_a_login(smtps: MailServer, certs: Path, outbox: Outbox) -> None:
    url = _url(smtps, certs)
    assert url.startswith("smtps://")
    done = outbox.deliver(KEY, _message(), _sender(url))
    assert done.step is Step.SENT, done.record.reason
    [received] = smtps.received
    assert received.tls and received.login == USER


def test_a_server_without_starttls_is_not_sent_to(outbox: Outbox) -> None:
    with MailServer() as plain:
        url = f"smtp://127.0.0.1:{plain.port}"  # TLS required: no tls=off
        done = outbox.deliver(KEY, _message(), _sender(url))
        assert done.step is Step.FAILED
        assert done.record.outcome is Outcome.FAILED and not done.record.retry
        assert "STARTTLS" in done.record.reason
        assert plain.received == []


def test_a_local_server_without_tls_when_asked(outbox: Outbox) -> None:
    with MailServer(users={USER: PASSWORD}) as plain:
        url = plain.url(quote(USER, safe=""), quote(PASSWORD, safe=""))
        assert "tls=off" in url
        done = outbox.deliver(KEY, _message(), _sender(url))
        assert done.step is Step.SENT, done.record.reason
        assert [r.login for r in plain.received] == [USER]


def test_a_certificate_from_an_unknown_ca_is_refused(mail: MailServer, outbox: Outbox) -> None:
    url = mail.url(quote(USER, safe=""), quote(PASSWORD, safe=""))  # no ca_file
    done = outbox.deliver(KEY, _message(), _sender(url))
    assert done.step is Step.FAILED
    assert done.record.outcome is Outcome.FAILED
    assert "certificate" in done.record.reason and "ca_file" in done.record.reason
    assert mail.received == [] and mail.logins == []


def test_a_wrong_password_fails_without_showing_either_password(
    mail: MailServer,
    certs: Path,
    outbox: Outbox,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "Wr0ng-S3cr3t-pw"
    caplog.set_level(logging.DEBUG)
    sender = _sender(_url(mail, certs, password=wrong))
    done = outbox.deliver(KEY, _message(), sender)
    assert done.step is Step.FAILED
    assert done.record.outcome is Outcome.FAILED
    assert "login" in done.record.reason and "535" in done.record.reason
    assert mail.received == [] and set(mail.logins) == {(USER, False)}
    shown = [done.record.reason, repr(done.record), repr(sender), str(sender.url)]
    shown += [caplog.text, *capsys.readouterr()]
    for text in shown:
        assert wrong not in text and quote(wrong, safe="") not in text


def test_the_password_is_in_no_message_record_or_log(
    mail: MailServer,
    certs: Path,
    outbox: Outbox,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = _sender(_url(mail, certs))
    assert outbox.deliver(KEY, _message(), sender).step is Step.SENT
    mail.refuse(TO)
    mail.refuse(CC)
    refused = outbox.deliver(LetterKey(KEY.escalation, "draft-2", 1), _message(2), sender)
    assert refused.step is Step.FAILED
    stored = b"".join(
        value
        for name in redis_client.scan_iter(match=f"{outbox.keys.prefix}:*")
        if redis_client.type(name) == b"hash"
        for value in redis_client.hgetall(name).values()
    )
    texts = [caplog.text, *capsys.readouterr(), repr(sender), str(sender.url), repr(sender.url)]
    texts += [refused.record.reason, repr(refused.record)]
    for form in (PASSWORD, quote(PASSWORD, safe="")):
        assert all(form not in text for text in texts)
        assert form.encode() not in stored
        assert all(form.encode() not in r.content for r in mail.received)
    assert "escalation esc-20260302-initech" in caplog.text  # the log says which escalation


# --- what the server says ------------------------------------------------------------------------


def test_a_refused_recipient_is_named_and_the_others_still_get_it(
    mail: MailServer, certs: Path, outbox: Outbox
) -> None:
    mail.refuse(CC, 550, "5.1.1 <ops-leads@initech.example>: no such mailbox")
    done = outbox.deliver(KEY, _message(), _sender(_url(mail, certs)))
    assert done.step is Step.SENT
    assert done.record.refused == ((CC, "550 5.1.1 <ops-leads@initech.example>: no such mailbox"),)
    [received] = mail.received
    assert received.recipients == (TO,)


def test_every_recipient_refused_is_permanent_until_the_address_is_corrected(
    mail: MailServer, certs: Path, outbox: Outbox
) -> None:
    mail.refuse(TO, 550, "5.1.1 no such user")
    sender = _sender(_url(mail, certs))
    done = outbox.deliver(KEY, _message(cc=()), sender)
    assert done.step is Step.FAILED
    record = done.record
    assert record.status is Status.FAILED and record.outcome is Outcome.REFUSED
    assert not record.retry
    assert TO in record.reason and "550" in record.reason
    assert record.refused == ((TO, "550 5.1.1 no such user"),)
    assert mail.received == []
    # Nothing reached anyone: the letter goes out to the corrected address, same Message-ID.
    fixed = "dana@initech.example"
    again = outbox.deliver(KEY, _message(to=fixed, cc=()), sender)
    assert again.step is Step.SENT
    assert again.record.attempts == 2 and again.record.recipients == (fixed,)
    [received] = mail.received
    assert received.recipients == (fixed,) and received.message_id == record.message_id


@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA"])
def test_a_4xx_is_temporary_and_the_next_try_delivers(
    mail: MailServer, certs: Path, outbox: Outbox, command: str
) -> None:
    mail.fail(command, 451, "4.3.0 Mailbox busy, try again later")
    sender = _sender(_url(mail, certs))
    first = outbox.deliver(KEY, _message(), sender)
    assert first.step is Step.FAILED
    assert first.record.outcome is Outcome.TEMPORARY and first.record.retry
    assert "451" in first.record.reason
    if command == "RCPT":
        # The first recipient only: the other is not sent to alone (nor twice later).
        assert TO in first.record.reason and CC not in first.record.reason
    assert mail.received == []
    second = outbox.deliver(KEY, _message(at=T0 + timedelta(minutes=5)), sender)
    assert second.step is Step.SENT
    assert second.record.attempts == 2
    assert second.record.message_id == first.record.message_id
    assert len(mail.received) == 1


def test_a_server_that_cannot_be_reached_is_temporary(outbox: Outbox) -> None:
    with MailServer() as gone:
        port = gone.port
    done = outbox.deliver(KEY, _message(), _sender(f"smtp://127.0.0.1:{port}?tls=off"))
    assert done.step is Step.FAILED
    assert done.record.outcome is Outcome.TEMPORARY and done.record.retry
    assert "failed at the connection" in done.record.reason
    assert "nothing sent" in done.record.reason


def test_a_connection_dropped_after_data_resends_the_same_message(
    mail: MailServer, certs: Path, outbox: Outbox
) -> None:
    mail.drop_after_data()
    sender = _sender(_url(mail, certs))
    first = outbox.deliver(KEY, _message(), sender)
    assert first.step is Step.FAILED
    assert first.record.outcome is Outcome.UNKNOWN and first.record.retry
    assert len(mail.received) == 1  # it did arrive; warroom could not know
    # Tried again with a message built anew later (another Date): the bytes on record go out.
    second = outbox.deliver(KEY, _message(at=T0 + timedelta(minutes=5)), sender)
    assert second.step is Step.SENT
    one, two = mail.wait_for(2)
    assert one.content == two.content == first.record.message
    assert one.message_id == two.message_id == second.record.message_id
    # The customer's mail client shows it once.
    assert len(mail.inbox(TO)) == 1


# --- exactly once --------------------------------------------------------------------------------


def test_a_letter_sent_is_not_sent_again(mail: MailServer, certs: Path, outbox: Outbox) -> None:
    sender = _sender(_url(mail, certs))
    first = outbox.deliver(KEY, _message(), sender)
    again = outbox.deliver(KEY, _message(at=T0 + timedelta(hours=1)), sender)
    assert (first.step, again.step) == (Step.SENT, Step.ALREADY_SENT)
    assert again.record == first.record
    assert len(mail.received) == 1


class _Died(BaseException):
    """The process ends here (nothing after it runs, nothing catches it)."""


class _DiesAfterSending:
    """Sends, then the process dies before the outbox hears the answer."""

    def __init__(self, sender: SmtpSender) -> None:
        self.sender = sender

    def send(self, message: bytes, sender: str, recipients: Sequence[str]) -> SendResult:
        self.sender.send(message, sender, recipients)
        raise _Died


def test_a_crash_between_sending_and_sent_resends_with_the_same_message_id(
    mail: MailServer, certs: Path, redis_client: redis.Redis, redis_url: str, prefix: str
) -> None:
    sender = _sender(_url(mail, certs))
    mail.fail("MAIL", 421, "4.7.0 Try again later")
    assert Outbox(redis_client, prefix).deliver(KEY, _message(), sender).step is Step.FAILED
    with pytest.raises(_Died):
        Outbox(redis_client, prefix).deliver(KEY, _message(), _DiesAfterSending(sender))
    left = Outbox(redis_client, prefix).get(KEY)
    assert left is not None and left.status is Status.SENDING and left.retry
    assert left.outcome is None and left.reason == ""
    # Another process, later, with the letter built again (another Date, same id).
    other = redis.Redis.from_url(redis_url)
    try:
        later = Outbox(other, prefix)
        done = later.deliver(KEY, _message(at=T0 + timedelta(minutes=3)), sender)
        assert done.step is Step.SENT
        assert done.record.attempts == 3
        assert later.deliver(KEY, _message(), sender).step is Step.ALREADY_SENT
    finally:
        other.close()
    one, two = mail.received
    assert one.content == two.content == left.message
    assert one.message_id == two.message_id == left.message_id


def test_a_letter_keeps_its_message_id(mail: MailServer, certs: Path, outbox: Outbox) -> None:
    sender = _sender(_url(mail, certs))
    mail.fail("RCPT", 451)
    assert outbox.deliver(KEY, _message(), sender).step is Step.FAILED
    with pytest.raises(OutboxError, match="cannot become"):
        outbox.deliver(KEY, _message(number=2), sender)
    assert mail.received == []


def test_two_processes_at_once_send_it_once(
    mail: MailServer, certs: Path, redis_client: redis.Redis, redis_url: str, prefix: str
) -> None:
    sender = _sender(_url(mail, certs))
    mail.hold()
    results: list[Delivery] = []
    first = threading.Thread(
        target=lambda: results.append(Outbox(redis_client, prefix).deliver(KEY, _message(), sender))
    )
    first.start()
    other = redis.Redis.from_url(redis_url)
    try:
        mail.wait_holding()  # the first process is in the middle of the SMTP transaction
        second = Outbox(other, prefix)
        busy = second.deliver(KEY, _message(), sender)
        assert busy.step is Step.BUSY
        assert busy.record.status is Status.SENDING
        mail.release()
        first.join(timeout=30)
        assert [r.step for r in results] == [Step.SENT]
        assert second.deliver(KEY, _message(), sender).step is Step.ALREADY_SENT
    finally:
        mail.release()
        other.close()
    assert len(mail.received) == 1


def test_many_processes_at_once_send_it_once(
    mail: MailServer, certs: Path, redis_url: str, prefix: str
) -> None:
    sender = _sender(_url(mail, certs))
    clients = [redis.Redis.from_url(redis_url) for _ in range(6)]
    steps: list[Step] = []
    start = threading.Barrier(len(clients))

    def click(client: redis.Redis) -> None:
        start.wait()
        steps.append(Outbox(client, prefix).deliver(KEY, _message(), sender).step)

    threads = [threading.Thread(target=click, args=(c,)) for c in clients]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        for c in clients:
            c.close()
    assert steps.count(Step.SENT) == 1
    assert set(steps) <= {Step.SENT, Step.BUSY, Step.ALREADY_SENT}
    assert len(mail.received) == 1


# --- one thread ----------------------------------------------------------------------------------


def test_three_letters_are_one_thread_in_the_customers_inbox(
    mail: MailServer, certs: Path, outbox: Outbox
) -> None:
    sender = _sender(_url(mail, certs))
    texts = [
        TEXT,
        "Subject: The fix is rolling out\n\nDear Ms Whitfield,\n\nThe fix is rolling out.\n",
        "Subject: Resolved\n\nDear Ms Whitfield,\n\nExports work again.\n",
    ]
    # As the war room sends them: each letter's number and the thread's subject from the outbox.
    for n, text in enumerate(texts, start=1):
        key = LetterKey(KEY.escalation, f"draft-{n}", 1)
        message = _message(
            outbox.number(key),
            text=text,
            first_subject=outbox.first_subject(KEY.escalation),
            at=T0 + timedelta(hours=n),
        )
        assert outbox.deliver(key, message, sender).step is Step.SENT
    first_subject = "Update on the service issue affecting Initech"
    [thread] = mail.threads(TO)
    assert [r.message["Subject"] for r in thread] == [
        first_subject,
        f"Re: {first_subject}",
        f"Re: {first_subject}",
    ]
    ids = [r.message_id for r in thread]
    assert len(set(ids)) == 3
    assert [str(r.message.get("In-Reply-To", "")) for r in thread] == ["", ids[0], ids[1]]
    assert [str(r.message.get("References", "")).split() for r in thread] == [
        [],
        ids[:1],
        ids[:2],
    ]
    assert mail.threads(CC) == [thread]
    shown = thread[2].shown()
    assert shown["from"] == "Victoria Vance <support@vendor.example>"
    assert shown["reply_to"] == "escalations@vendor.example"
    assert (shown["to"], shown["cc"]) == (TO, CC)
    assert shown["text"] == "Dear Ms Whitfield,\n\nExports work again.\n"
    assert "<p>Exports work again.</p>" in shown["html"]
    assert [r.message_id for r in outbox.letters(KEY.escalation)] == ids


def test_a_claim_left_by_a_dead_process_is_taken_over_when_its_lease_lapses(
    mail: MailServer, certs: Path, outbox: Outbox, redis_client: redis.Redis
) -> None:
    # A process claimed the letter and was killed before it could let go: nothing ran after.
    claim = outbox.keys.claim(KEY)
    redis_client.set(claim, "a-process-that-died", px=300)
    sender = _sender(_url(mail, certs))
    assert outbox.deliver(KEY, _message(), sender).step is Step.BUSY
    assert mail.received == []
    while redis_client.exists(claim):  # until Redis lets the lease go
        time.sleep(0.05)
    assert outbox.deliver(KEY, _message(), sender).step is Step.SENT
    assert len(mail.received) == 1


def test_each_letter_has_its_own_number_and_message_id(
    mail: MailServer, certs: Path, outbox: Outbox
) -> None:
    sender = _sender(_url(mail, certs))
    first, second, third = (LetterKey(KEY.escalation, f"draft-{n}", 1) for n in (1, 2, 3))
    assert outbox.first_subject(KEY.escalation) is None
    assert outbox.number(first) == 1
    assert outbox.deliver(first, _message(1), sender).step is Step.SENT
    subject = outbox.first_subject(KEY.escalation)
    assert subject == "Update on the service issue affecting Initech"
    # Numbers are given once per letter, and the same again when asked again.
    assert [outbox.number(k) for k in (third, second, third, first)] == [2, 3, 2, 1]
    assert outbox.number(LetterKey(KEY.escalation, "draft-2", 2)) == 4  # a new version
    assert outbox.number(LetterKey("esc-other", "draft-1", 1)) == 1
    # A letter given another's number by mistake cannot take its Message-ID.
    assert outbox.deliver(third, _message(2, first_subject=subject), sender).step is Step.SENT
    with pytest.raises(OutboxError, match="belongs to another letter"):
        outbox.deliver(second, _message(2, first_subject=subject), sender)
    assert outbox.deliver(second, _message(3, first_subject=subject), sender).step is Step.SENT
    assert len({r.message_id for r in mail.received}) == len(mail.received) == 3
    assert [len(t) for t in mail.threads(TO)] == [3]


def test_numbers_given_at_once_are_all_different(redis_url: str, prefix: str) -> None:
    clients = [redis.Redis.from_url(redis_url) for _ in range(8)]
    numbers: list[int] = []
    start = threading.Barrier(len(clients))

    def ask(n: int, client: redis.Redis) -> None:
        start.wait()
        numbers.append(Outbox(client, prefix).number(LetterKey("esc-1", f"draft-{n}", 1)))

    threads = [threading.Thread(target=ask, args=(n, c)) for n, c in enumerate(clients)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        for c in clients:
            c.close()
    assert sorted(numbers) == list(range(1, 9))


def test_a_check_logs_in_and_sends_nothing(mail: MailServer, certs: Path) -> None:
    assert _sender(_url(mail, certs)).check() is None
    assert mail.logins == [(USER, True)] and mail.received == []
    wrong = _sender(_url(mail, certs, password="not-it")).check()
    assert wrong is not None and "login" in wrong and "not-it" not in wrong
    untrusted = _sender(mail.url(quote(USER, safe=""), quote(PASSWORD, safe=""))).check()
    assert untrusted is not None and "certificate" in untrusted
    assert mail.received == []
