"""The letter as an email message, and WARROOM_SMTP_URL: pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from bot.delivery.mail import (
    Letter,
    LetterError,
    build_message,
    message_id,
    recipients,
    render_html,
    split_subject,
)
from bot.delivery.smtp import SmtpURLError, parse_smtp_url

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEXT = (
    "Subject: Update on the service issue affecting Initech\n\n"
    "Dear Ms Whitfield,\n\n"
    "Exports are failing for some of your team. We have a workaround: use the CSV export.\n"
    "Next update by 14:00 your time.\n\n"
    "Kind regards,\nVictoria Vance\n"
)


def _letter(**changes: object) -> Letter:
    values: dict[str, object] = {
        "text": TEXT,
        "escalation": "esc-20260302-initech",
        "number": 1,
        "signer": "Victoria Vance",
        "sender": "support@vendor.example",
        "reply_to": "escalations@vendor.example",
        "to": "dana.whitfield@initech.example",
        "cc": ("ops-leads@initech.example",),
    }
    values.update(changes)
    return Letter(**values)  # type: ignore[arg-type]


def _wire(msg: EmailMessage) -> EmailMessage:
    """The message as the customer's mail client reads it: through its bytes."""
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def _plain(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def _html(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def test_the_message_carries_the_signer_the_addresses_and_both_bodies() -> None:
    msg = _wire(build_message(_letter(), NOW))
    assert str(msg["From"]) == "Victoria Vance <support@vendor.example>"
    assert str(msg["Reply-To"]) == "escalations@vendor.example"
    assert str(msg["To"]) == "dana.whitfield@initech.example"
    assert str(msg["Cc"]) == "ops-leads@initech.example"
    assert "Bcc" not in msg
    assert str(msg["Subject"]) == "Update on the service issue affecting Initech"
    assert msg["Date"].datetime == NOW
    assert msg.get_content_type() == "multipart/alternative"
    # The plain text is the approved letter after its subject line, exactly.
    assert _plain(msg) == TEXT.split("\n\n", 1)[1]
    assert "<p>Dear Ms Whitfield,</p>" in _html(msg)
    assert "use the CSV export.<br>\nNext update by 14:00 your time.</p>" in _html(msg)
    assert recipients(msg) == ["dana.whitfield@initech.example", "ops-leads@initech.example"]


def test_the_same_letter_gives_the_same_message_id_and_bytes() -> None:
    one, two = build_message(_letter(), NOW), build_message(_letter(), NOW)
    assert (
        one["Message-ID"] == two["Message-ID"] == "<warroom.esc-20260302-initech.1@vendor.example>"
    )
    assert one.as_bytes() == two.as_bytes()
    assert message_id("esc-1", 2, "Vendor.Example") == "<warroom.esc-1.2@vendor.example>"
    # Another letter, escalation or domain: another id.
    ids = {
        message_id("esc-1", 1, "vendor.example"),
        message_id("esc-1", 2, "vendor.example"),
        message_id("esc-2", 1, "vendor.example"),
        message_id("esc-1", 1, "other.example"),
    }
    assert len(ids) == 4
    # An id with characters a Message-ID cannot hold is hashed, the same way each time.
    odd = message_id("esc <1>@x", 1, "vendor.example")
    assert odd == message_id("esc <1>@x", 1, "vendor.example")
    assert odd.count("@") == 1 and odd.count("<") == 1 and " " not in odd


def test_three_letters_are_one_thread() -> None:
    first = _wire(build_message(_letter(), NOW))
    second = _wire(
        build_message(
            _letter(
                number=2,
                text="Subject: Update 2: the fix is rolling out\n\nDear Ms Whitfield,\n\nMore.\n",
                first_subject=str(first["Subject"]),
            ),
            NOW,
        )
    )
    third = _wire(
        build_message(
            _letter(
                number=3,
                text="Subject: Resolved: the service issue\n\nDear Ms Whitfield,\n\nFixed.\n",
                first_subject=str(first["Subject"]),
            ),
            NOW,
        )
    )
    ids = [str(m["Message-ID"]) for m in (first, second, third)]
    assert len(set(ids)) == 3
    assert "In-Reply-To" not in first and "References" not in first
    assert str(second["In-Reply-To"]) == ids[0]
    assert str(second["References"]).split() == ids[:1]
    assert str(third["In-Reply-To"]) == ids[1]
    assert str(third["References"]).split() == ids[:2]
    # The subject stays the first letter's, as a reply: the thread holds in Gmail and Outlook.
    subject = "Update on the service issue affecting Initech"
    assert [str(m["Subject"]) for m in (first, second, third)] == [
        subject,
        f"Re: {subject}",
        f"Re: {subject}",
    ]
    # A first subject that already was a reply does not grow another "Re:".
    again = build_message(_letter(number=2, first_subject="RE: Re:  Outage"), NOW)
    assert str(again["Subject"]) == "Re: Outage"


def test_hostile_text_is_escaped_in_the_html_and_kept_in_the_plain_text() -> None:
    hostile = (
        "Subject: <script>alert(1)</script>\n\n"
        'Dear <b>Dana</b> & "team",\n'
        '<a href="https://evil.example">click</a> <img src=x onerror=alert(1)>\n\n'
        "</p></body><style>*{display:none}</style>\n"
    )
    msg = _wire(build_message(_letter(text=hostile), NOW))
    html = _html(msg)
    for raw in ("<script", "<b>", "<a ", "<img", "</body><style", 'href="'):
        assert raw not in html
    assert "&lt;b&gt;Dana&lt;/b&gt; &amp; &quot;team&quot;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<p>") == 2
    assert _plain(msg) == hostile.split("\n\n", 1)[1]
    assert str(msg["Subject"]) == "<script>alert(1)</script>"


def test_render_html_keeps_paragraphs_and_line_breaks() -> None:
    html = render_html("One\r\nline two\n\n\n  \nThree\n")
    assert "<p>One<br>\nline two</p>\n<p>Three</p>" in html


@pytest.mark.parametrize(
    "signer",
    [
        "Victoria\r\nBcc: attacker@evil.example",
        'Vance, Victoria "VP" <victoria@evil.example>',
        "Victoria\nX-Injected: yes",
        "Victoria\u2028Bcc: attacker@evil.example",
    ],
)
def test_no_header_can_be_injected_through_the_signer(signer: str) -> None:
    raw = build_message(_letter(signer=signer), NOW).as_bytes()
    msg = _wire(build_message(_letter(signer=signer), NOW))
    assert "Bcc" not in msg and "X-Injected" not in msg
    assert [a.addr_spec for a in msg["From"].addresses] == ["support@vendor.example"]
    assert b"\nBcc:" not in raw and b"\nX-Injected" not in raw
    assert recipients(msg) == ["dana.whitfield@initech.example", "ops-leads@initech.example"]


def test_no_header_can_be_injected_through_the_subject() -> None:
    text = "Subject: Update\rBcc: attacker@evil.example\n\nDear Dana,\n"
    msg = _wire(build_message(_letter(text=text), NOW))
    assert "Bcc" not in msg
    assert str(msg["Subject"]) == "Update Bcc: attacker@evil.example"


@pytest.mark.parametrize(
    "to",
    [
        "dana@initech.example, attacker@evil.example",
        "dana@initech.example\r\nBcc: attacker@evil.example",
        "Dana <dana@initech.example>",
        "undisclosed:;",
        "dana",
        "däna@initech.example",
        "",
    ],
)
def test_an_address_is_one_plain_address(to: str) -> None:
    with pytest.raises(LetterError):
        build_message(_letter(to=to), NOW)
    with pytest.raises(LetterError):
        build_message(_letter(cc=("ok@initech.example", to or "x")), NOW)


def test_a_letter_needs_text_and_an_aware_date() -> None:
    with pytest.raises(LetterError):
        build_message(_letter(text="Subject: Only a subject\n\n"), NOW)
    with pytest.raises(LetterError):
        build_message(_letter(), datetime(2026, 3, 2, 10, 0))
    with pytest.raises(LetterError):
        build_message(_letter(number=0), NOW)


def test_a_letter_without_a_subject_line_is_all_body() -> None:
    assert split_subject("Dear Dana,\n\nHello.\n") == ("", "Dear Dana,\n\nHello.\n")
    assert split_subject("subject:  Hi there \n\n\nDear Dana,\n") == ("Hi there", "Dear Dana,\n")


def test_a_non_ascii_signer_is_an_encoded_word() -> None:
    msg = build_message(_letter(signer="Zoë Ångström"), NOW)
    raw = msg.as_bytes()
    assert raw.isascii()
    assert str(_wire(msg)["From"]) == "Zoë Ångström <support@vendor.example>"


# --- WARROOM_SMTP_URL ----------------------------------------------------------------------------


def test_smtp_urls_name_host_port_tls_and_login() -> None:
    url = parse_smtp_url("smtp://mailer%40vendor.example:p%40ss%3Aw%2Frd@smtp.vendor.example")
    assert (url.host, url.port, url.implicit_tls, url.plaintext) == (
        "smtp.vendor.example",
        587,
        False,
        False,
    )
    assert (url.username, url.password) == ("mailer@vendor.example", "p@ss:w/rd")
    tls = parse_smtp_url("smtps://u:pw@smtp.vendor.example?ca_file=/etc/ca.pem&timeout=5")
    assert (tls.port, tls.implicit_tls, tls.ca_file, tls.timeout) == (465, True, "/etc/ca.pem", 5.0)
    assert parse_smtp_url("smtp://[::1]:2525?tls=off").plaintext
    assert parse_smtp_url("smtp://localhost:2525?tls=off").port == 2525
    assert parse_smtp_url("SMTP://relay:25").username is None


def test_an_smtp_url_never_shows_its_password() -> None:
    url = parse_smtp_url("smtps://mailer:s3cret%2Fpw@smtp.vendor.example:465")
    for shown in (str(url), repr(url), f"{url}", f"{url!r}"):
        assert "s3cret" not in shown
        assert "mailer:***@smtp.vendor.example:465" in shown


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://u:s3cret@host", "smtp:// or smtps://"),
        ("smtp://u:s3cret@", "no host"),
        ("smtp://u:s3cret@host:99999", "not an SMTP URL"),
        ("smtp://u:s3cret@host/path", "no path"),
        ("smtp://u:s3cret@host?password=s3cret", "unknown option"),
        ("smtp://u:s3cret@host?timeout=soon", "seconds"),
        ("smtp://u:s3cret@host?timeout=0", "between"),
        ("smtp://u:s3cret@mail.vendor.example?tls=off", "this machine"),
        ("smtps://u:s3cret@127.0.0.1?tls=off", "this machine"),
        ("smtp://u:s3cret@host?tls=maybe", "only 'off'"),
        ("smtp://u:s3cret%C3%A9@host", "ASCII"),
    ],
)
def test_an_unusable_smtp_url_is_one_line_without_the_password(url: str, says: str) -> None:
    with pytest.raises(SmtpURLError) as caught:
        parse_smtp_url(url)
    message = str(caught.value)
    assert says in message
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "smtp://user:p@ss?Secr3t@host:587",  # an unencoded "@" then "?" in the password
        "smtp://apikey?Secr3t@host:587",
        "smtp://user:pw@host:587?tls=off&Secr3t=1",
    ],
)
def test_an_unknown_option_is_not_named_it_may_be_a_password_s_tail(url: str) -> None:
    with pytest.raises(SmtpURLError) as caught:
        parse_smtp_url(url)
    assert "Secr3t" not in str(caught.value)


def test_settings_read_the_smtp_url_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("WARROOM_SMTP_URL", "smtps://mailer:s3cret@smtp.vendor.example")
    monkeypatch.setenv("WARROOM_MAIL_FROM", "support@vendor.example")
    monkeypatch.setenv("WARROOM_MAIL_REPLY_TO", "escalations@vendor.example")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.smtp_url is not None
    assert parse_smtp_url(settings.smtp_url.get_secret_value()).password == "s3cret"
    assert (settings.mail_from, settings.mail_reply_to) == (
        "support@vendor.example",
        "escalations@vendor.example",
    )
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)
    assert Settings(_env_file=None, smtp_url=None).smtp_url is None  # type: ignore[call-arg]
