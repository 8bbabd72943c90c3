"""A message of the reply mailbox, read, and WARROOM_IMAP_URL: pure, no server."""

from __future__ import annotations

import pytest

from bot.delivery import inbound
from bot.delivery.imap import ImapURLError, parse_imap_url
from bot.delivery.inbound import Kind

LETTER_ID = "<warroom.esc-1.1@vendor.example>"


def _mail(body: str, *, headers: str = "", content_type: str = "text/plain") -> bytes:
    return (
        "From: Dana Whitfield <dana.whitfield@initech.example>\r\n"
        "To: escalations@vendor.example\r\n"
        "Subject: Re: Checkout for your EU users\r\n"
        "Message-ID: <reply-1@initech.example>\r\n"
        f"In-Reply-To: {LETTER_ID}\r\n"
        f"References: {LETTER_ID}\r\n"
        f"{headers}"
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "\r\n" + body
    ).encode()


def test_a_reply_is_its_new_words_without_the_quoted_letter_or_signature() -> None:
    body = "Thanks. Which regions are affected?\r\n\r\n-- \r\nDana Whitfield\r\nCTO, Initech\r\n"
    mail = inbound.read(_mail(body))
    assert mail.kind is Kind.REPLY and mail.ref == "<reply-1@initech.example>"
    assert mail.answers == (LETTER_ID,) and mail.author == "Dana Whitfield"
    assert mail.text == "Thanks. Which regions are affected?"


@pytest.mark.parametrize(
    "quoted",
    [
        "On Mon, 2 Mar 2026 at 14:00, Victoria Vance <support@vendor.example> wrote:\n> Dear Dana,",
        "On Mon, 2 Mar 2026 at 14:00, Victoria Vance\n<support@vendor.example> wrote:\n> Dear Dana",
        "-----Original Message-----\nFrom: Victoria Vance\nSent: Monday\n\nDear Dana,",
        "From: Victoria Vance <support@vendor.example>\nSent: Monday, 2 March\nDear Dana,",
    ],
)
def test_the_quoted_letter_is_left_out_however_the_client_quotes_it(quoted: str) -> None:
    assert inbound.new_words(f"Please call me.\n\n{quoted}\nmore of the letter") == (
        "Please call me."
    )


def test_quoted_lines_are_left_out_and_answers_between_them_kept() -> None:
    text = "> Is checkout back?\nNot for us.\n> Which regions?\nEU-West.\n"
    assert inbound.new_words(text) == "Not for us.\nEU-West."


def test_an_html_only_reply_is_read_as_text_without_markup_or_the_quote() -> None:
    body = (
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<p>Is &lt;b&gt;EU-West&lt;/b&gt; back &amp; stable?</p><div>Second line</div>"
        '<div class="gmail_quote">On Mon ... wrote:<blockquote>Dear Dana</blockquote></div>'
        "</body></html>"
    )
    mail = inbound.read(_mail(body, content_type="text/html"))
    assert mail.text == "Is <b>EU-West</b> back & stable?\n\nSecond line"


def test_the_plain_part_is_preferred_and_attachments_are_counted() -> None:
    raw = (
        "From: =?utf-8?q?Dana_=C3=89lodie?= <dana@initech.example>\r\n"
        "Message-ID: <reply-2@initech.example>\r\n"
        f"In-Reply-To: {LETTER_ID}\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        '--b1\r\nContent-Type: multipart/alternative; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nThe plain words\r\n"
        "--b2\r\nContent-Type: text/html\r\n\r\n<p>The html words</p>\r\n--b2--\r\n"
        "--b1\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=a.png\r\n"
        "\r\nAAAA\r\n"
        "--b1\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=b.csv\r\n"
        "\r\na,b\r\n--b1--\r\n"
    ).encode()
    mail = inbound.read(raw)
    assert mail.text == "The plain words" and mail.attachments == 2
    assert mail.author == "Dana Élodie"


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\r\n",
        "X-Autoreply: yes\r\n",
        "Precedence: auto_reply\r\n",
    ],
)
def test_auto_replies_are_not_a_persons_reply(headers: str) -> None:
    assert inbound.read(_mail("I am away until Monday.", headers=headers)).kind is Kind.AUTO


def test_an_out_of_office_subject_is_an_auto_reply() -> None:
    raw = _mail("Away.").replace(b"Subject: Re: Checkout", b"Subject: Out of Office: Checkout")
    assert inbound.read(raw).kind is Kind.AUTO
    assert inbound.read(_mail("Fine.", headers="Auto-Submitted: no\r\n")).kind is Kind.REPLY


def bounce(original_id: str = LETTER_ID, recipient: str = "dana@initech.example") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.vendor.example>\r\n"
        "Message-ID: <bounce-1@mx.vendor.example>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.vendor.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "Final-Recipient: rfc822; later@initech.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
        "\r\n--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nSubject: Checkout for your EU users\r\n"
        "\r\n--r--\r\n"
    ).encode()


def test_a_bounce_names_the_letter_and_the_recipients_that_failed_for_good() -> None:
    raw = bounce()
    assert inbound.heads(raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n").report
    mail = inbound.read(raw)
    assert mail.kind is Kind.BOUNCE and mail.answers == (LETTER_ID,)
    assert mail.undeliverable == ("dana@initech.example",)


def test_a_report_of_a_delay_is_no_bounce() -> None:
    delayed = bounce().replace(b"Action: failed", b"Action: delayed")
    mail = inbound.read(delayed)
    assert mail.kind is Kind.AUTO and mail.undeliverable == ()


def test_the_headers_name_in_reply_to_first_then_references_newest_first() -> None:
    head = (
        b"In-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n <c@x>\r\nContent-Type: text/plain\r\n"
    )
    found = inbound.heads(head)
    assert found.answers == ("<b@x>", "<c@x>", "<a@x>") and not found.report


def test_a_message_without_an_id_is_known_by_its_bytes() -> None:
    raw = _mail("Hello").replace(b"Message-ID: <reply-1@initech.example>\r\n", b"")
    assert inbound.read(raw).ref == inbound.read(raw).ref != inbound.read(raw + b"!").ref


# --- WARROOM_IMAP_URL ----------------------------------------------------------------------------


def test_imap_urls_name_host_port_tls_mailbox_and_login() -> None:
    url = parse_imap_url("imaps://replies%40vendor.example:p%40ss@imap.vendor.example/Support%20In")
    assert (url.host, url.port, url.implicit_tls) == ("imap.vendor.example", 993, True)
    assert (url.username, url.password, url.mailbox) == (
        "replies@vendor.example",
        "p@ss",
        "Support In",
    )
    plain = parse_imap_url(
        "imap://u:pw@imap.vendor.example?ca_file=/etc/ca.pem&timeout=5&flag=$done"
    )
    assert (plain.port, plain.implicit_tls, plain.mailbox, plain.flag) == (
        143,
        False,
        "INBOX",
        "$done",
    )
    assert parse_imap_url("imap://u:pw@127.0.0.1:1143?tls=off").plaintext


def test_an_imap_url_never_shows_its_password() -> None:
    url = parse_imap_url("imaps://replies:s3cret%2Fpw@imap.vendor.example")
    for shown in (str(url), repr(url), f"{url}", f"{url!r}"):
        assert "s3cret" not in shown and "replies:***@imap.vendor.example:993/INBOX" in shown


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://u:s3cret@host", "imap:// or imaps://"),
        ("imaps://u:s3cret@", "no host"),
        ("imaps://u:s3cret@host:99999", "not an IMAP URL"),
        ("imaps://host", "user and a password"),
        ("imaps://u:s3cret@host?password=s3cret", "unknown option"),
        ("imaps://u:s3cret@host?timeout=soon", "seconds"),
        ("imaps://u:s3cret@host?timeout=0", "between"),
        ("imap://u:s3cret@mail.vendor.example?tls=off", "this machine"),
        ("imaps://u:s3cret@127.0.0.1?tls=off", "this machine"),
        ("imaps://u:s3cret@host?flag=a%20b", "keyword"),
        ("imaps://u:s3cret@host?flag=\\Deleted", "keyword"),
        ("imaps://u:s3cret%C3%A9@host", "ASCII"),
        ("imaps://u:s3cret@host/IN%22BOX", "plain ASCII name"),
    ],
)
def test_an_unusable_imap_url_is_one_line_without_the_password(url: str, says: str) -> None:
    with pytest.raises(ImapURLError) as caught:
        parse_imap_url(url)
    message = str(caught.value)
    assert says in message
    assert "s3cret" not in message and "\n" not in message


def test_settings_read_the_imap_url_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("WARROOM_IMAP_URL", "imaps://replies:s3cret@imap.vendor.example")
    monkeypatch.setenv("WARROOM_IMAP_POLL_SECONDS", "30")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.imap_url is not None and settings.imap_poll_seconds == 30
    assert parse_imap_url(settings.imap_url.get_secret_value()).password == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)


# Passwords with their special characters left unencoded: pieces found nowhere else, so a
# piece of one in what is shown is a leak even when the password was cut at the character.
A, B, C = "Qz7piece", "Kx4piece", "Wv9piece"


@pytest.mark.parametrize(
    "url",
    [
        f"imaps://user:{A}@{B}@imap.vendor.example",
        f"imaps://user:{A}?{B}@imap.vendor.example",
        f"imaps://user:{A}#{B}@imap.vendor.example",
        f"imaps://user:{A}/{B}@imap.vendor.example",
        f"imaps://user:{A}@ss?{B}@imap.vendor.example",
        f"imaps://user:{A}@ss?{B}={C}@imap.vendor.example",
        f"imaps://user:{A}:{B}@imap.vendor.example",
        f"imaps://user:{A}%{B}@imap.vendor.example",
        f"imaps://user:{A} {B}@imap.vendor.example",
        f"imaps://{A}@imap.vendor.example?{B}",
        f"imaps://user:1234?{B}@imap.vendor.example",
        f"imaps://user:1234/{B}@imap.vendor.example",
    ],
)
def test_a_hostile_imap_url_shows_no_piece_of_its_password(url: str) -> None:
    try:
        parsed = parse_imap_url(url)
    except ImapURLError as e:
        shown = str(e)
    else:
        shown = f"{parsed} {parsed!r}"
    for piece in (A, B, C):
        assert piece not in shown, shown
