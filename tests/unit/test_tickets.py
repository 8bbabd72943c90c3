"""Support tickets, pure: naming a ticket (number or URL), `--ticket` on the command line and
the form's field, the Zendesk settings and warroom.yaml's `zendesk:` section, and how the
brief shows a ticket (its words inert)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import ConfigError, load_config
from bot.desk import webhook
from bot.domain.errors import InvalidInput
from bot.domain.escalation import Escalation
from bot.domain.tickets import (
    MAX_TICKETS,
    CommentSeen,
    LinkedTicket,
    OrgTickets,
    is_customer_reply,
    link,
    parse_ticket_ref,
    parse_ticket_refs,
    surge,
    ticket_command,
    unlink,
)
from bot.settings import Settings, SettingsError, load_settings
from bot.slack.blocks import declaration_form, tickets_text
from bot.slack.forms import read_form
from bot.slack.ids import VALUE, BlockId
from bot.slack.parse import InvalidCommand, parse_escalate
from protocols.loader import load_protocol

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("4711", 4711),
        ("#4711", 4711),
        ("https://acme.zendesk.com/agent/tickets/4711", 4711),
        ("<https://acme.zendesk.com/agent/tickets/4711|the ticket>", 4711),
        ("https://acme.zendesk.com/hc/en-us/requests/4711?x=1", 4711),
        ("https://acme.zendesk.com/api/v2/tickets/4711.json", 4711),
    ],
)
def test_a_ticket_is_named_by_its_number_or_its_url(text: str, number: int) -> None:
    assert parse_ticket_ref(text) == number


@pytest.mark.parametrize("text", ["abc", "0", "https://acme.zendesk.com/agent/users/12", "-4"])
def test_anything_else_is_refused_in_words_that_say_what_to_give(text: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_ticket_ref(text)
    assert "4711" in e.value.message


def test_several_tickets_in_order_without_repeats_and_not_too_many() -> None:
    assert parse_ticket_refs("4711, 4712 #4711") == (4711, 4712)
    with pytest.raises(InvalidInput):
        parse_ticket_refs(" ".join(str(n) for n in range(1, MAX_TICKETS + 2)))
    linked = link((), 1, "u")
    assert link(linked, 1, "u") is linked


def test_escalate_takes_repeated_ticket_flags() -> None:
    parsed = parse_escalate(
        "Initech: exports fail --ticket 4711 --ticket https://acme.zendesk.com/agent/tickets/4712",
        ("security_incident",),
    )
    assert parsed.tickets == (4711, 4712)  # type: ignore[union-attr]
    assert parsed.summary == "exports fail"  # type: ignore[union-attr]


def test_a_bad_ticket_flag_is_one_of_the_problems_reported() -> None:
    with pytest.raises(InvalidCommand) as e:
        parse_escalate("Initech: exports fail --ticket nope --arr lots", ())
    assert any("--ticket" in p for p in e.value.problems)
    assert any("--arr" in p for p in e.value.problems)


def test_the_form_has_a_ticket_field_only_with_a_desk_and_reads_it() -> None:
    protocol = load_protocol(None)
    assert BlockId.TICKETS not in str(declaration_form(protocol).to_dict())
    assert BlockId.TICKETS in str(declaration_form(protocol, ticket_field=True).to_dict())
    values = {
        BlockId.CUSTOMER: {VALUE: {"value": "Initech"}},
        BlockId.SUMMARY: {VALUE: {"value": "Exports fail"}},
        BlockId.TICKETS: {VALUE: {"value": "4711, 4712"}},
    }
    decl = read_form(values, "U0DECLARER", ())
    assert not isinstance(decl, dict) and decl.tickets == (4711, 4712)
    values[BlockId.TICKETS] = {VALUE: {"value": "the big one"}}
    errors = read_form(values, "U0DECLARER", ())
    assert isinstance(errors, dict) and BlockId.TICKETS in errors


def test_the_zendesk_url_must_be_an_account_address(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        Settings(_env_file=None, zendesk_url="https://Acme.zendesk.com/").zendesk_url  # type: ignore[call-arg]
        == "https://acme.zendesk.com"
    )
    for bad in (
        "http://acme.zendesk.com",
        "https://acme.zendesk.com.evil.example",
        "https://user:s3cret@acme.zendesk.com",
        "https://acme.zendesk.com/agent",
    ):
        monkeypatch.setenv("WARROOM_ZENDESK_URL", bad)
        with pytest.raises(SettingsError) as e:
            load_settings()
        assert str(e.value).startswith("WARROOM_ZENDESK_URL:") and "SUBDOMAIN" in str(e.value)
        assert "s3cret" not in str(e.value)


def test_zendesk_is_all_three_or_refused_and_its_secrets_never_shown() -> None:
    half = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token="xoxb-1",
        slack_signing_secret="s",
        zendesk_url="https://acme.zendesk.com",
        zendesk_token=SecretStr("zd-t0ken"),
    )
    assert half.missing_for_run() == ["WARROOM_ZENDESK_EMAIL"]
    whole = half.model_copy(
        update={"zendesk_email": "api@acme.example", "zendesk_webhook_secret": SecretStr("wh-s3c")}
    )
    assert whole.zendesk and not whole.missing_for_run()
    for shown in (repr(whole), str(whole)):
        assert "zd-t0ken" not in shown and "wh-s3c" not in shown


def test_the_zendesk_section_of_the_config_is_small_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "warroom.yaml"
    path.write_text("zendesk:\n  on_send: hold\n  on_resolve: null\n  surge: 8\n")
    config = load_config(path, ())
    assert (config.zendesk.on_send, config.zendesk.on_resolve, config.zendesk.surge) == (
        "hold",
        None,
        8,
    )
    assert load_config(None, ()).zendesk.on_send == "pending"
    for bad in ("zendesk:\n  on_send: closed\n", "zendesk:\n  statuses: {}\n"):
        path.write_text(bad)
        with pytest.raises(ConfigError) as e:
            load_config(path, ())
        assert "zendesk." in str(e.value)


def _esc(**update: object) -> Escalation:
    base = Escalation(
        id="esc-1",
        channel_id="C1",
        customer="Initech",
        summary="s",
        ic="U1",
        declarer="U2",
        declared_at=T0,
        protocol_id="p",
        protocol_version=1,
    )
    return base.model_copy(update=update)


def test_the_brief_shows_a_ticket_with_its_words_inert_and_a_link() -> None:
    ticket = LinkedTicket(
        id=4711,
        url="https://acme.zendesk.com/agent/tickets/4711",
        subject="Exports *fail* <!channel>",
        status="open",
        priority="urgent",
        tags=("vip",),
        requester="Dana <@U0BOSS>",
        organization="Initech",
        organization_id=9,
        read_at=T0,
    )
    org = OrgTickets(
        organization_id=9,
        organization="Initech",
        since=T0,
        count=3,
        link="https://acme.zendesk.com/agent/search/1?type=ticket&q=organization%3A9",
        checked_at=T0,
    )
    text = tickets_text(_esc(tickets=(ticket,), org_tickets=org))
    assert "<https://acme.zendesk.com/agent/tickets/4711|#4711>" in text
    assert "<!channel>" not in text and "<@U0BOSS>" not in text
    assert "urgent" in text and "vip" in text and "|3 tickets>" in text
    gone = LinkedTicket(
        id=5, url="javascript:alert(1)", problem="Zendesk: it was deleted", gone=True
    )
    shown = tickets_text(_esc(tickets=(gone,)))
    assert "deleted" in shown and "javascript" not in shown


def _comment(**update: object) -> CommentSeen:
    values: dict[str, object] = {
        "ticket_id": 1,
        "comment_id": 2,
        "author_id": 3,
        "author_name": "Dana",
        "author_is_staff": False,
        "public": True,
        "body": "still broken",
    }
    values.update(update)
    return CommentSeen(**values)  # type: ignore[arg-type]


def test_only_public_customer_comments_on_linked_tickets_are_replies() -> None:
    assert is_customer_reply(_comment(), True, set())
    assert not is_customer_reply(_comment(), False, set())
    assert not is_customer_reply(_comment(public=False), True, set())
    assert not is_customer_reply(_comment(author_is_staff=True), True, set())
    assert not is_customer_reply(_comment(author_id=3), True, {3})
    assert not is_customer_reply(_comment(body="  "), True, set())


def test_a_surge_lists_the_organisations_over_the_threshold_most_first() -> None:
    def org(n: int, count: int) -> OrgTickets:
        return OrgTickets(
            organization_id=n, organization=f"O{n}", since=T0, count=count, link="", checked_at=T0
        )

    assert [o.organization for o in surge([org(1, 5), org(2, 9), org(3, 2)], 5)] == ["O2", "O1"]


def test_a_comment_whose_author_is_not_said_to_be_staff_or_not_is_the_requesters_only() -> None:
    # A webhook sent from a trigger with a body of its own may leave `is_staff` out: then
    # only the requester's own comment is theirs; an agent's answer is never taken for it.
    unknown = _comment(author_is_staff=None, author_id=3)
    assert is_customer_reply(unknown, True, set(), requester_id=3)
    assert not is_customer_reply(unknown, True, set(), requester_id=4)
    assert not is_customer_reply(unknown, True, set())
    assert is_customer_reply(_comment(author_id=5), True, set(), requester_id=3)


def test_a_comment_event_without_is_staff_reads_as_unknown() -> None:
    import json

    from bot.desk.webhook import comment_of

    event = {
        "type": "zen:event-type:ticket.comment_added",
        "detail": {"id": "7"},
        "event": {"comment": {"id": 9, "body": "hi", "is_public": True, "author": {"id": "3"}}},
    }
    seen = comment_of(json.dumps(event).encode())
    assert seen is not None and seen.author_is_staff is None
    event["event"]["comment"]["author"]["is_staff"] = False  # type: ignore[index]
    seen = comment_of(json.dumps(event).encode())
    assert seen is not None and seen.author_is_staff is False


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("4711", (False, "4711")),
        ("remove 4711", (True, "4711")),
        ("Remove: #4711 4712", (True, "#4711 4712")),
        ("unlink <https://acme.zendesk.com/agent/tickets/4711>", (True, "<https://acme.zendesk.com/agent/tickets/4711>")),
        ("remove", (True, "")),
    ],
)  # fmt: skip
def test_ticket_remove_takes_tickets_off_anything_else_links(
    text: str, said: tuple[bool, str]
) -> None:
    assert ticket_command(text) == said
    remove, refs = ticket_command("remove https://acme.zendesk.com/agent/tickets/4711, 4712")
    assert remove and parse_ticket_refs(refs) == (4711, 4712)
    with pytest.raises(InvalidInput):
        parse_ticket_refs(ticket_command("remove")[1])


def test_unlinking_keeps_the_others_in_order_and_an_unlinked_one_changes_nothing() -> None:
    tickets = link(link(link((), 1, "u1"), 2, "u2"), 3, "u3")
    assert [t.id for t in unlink(tickets, 2)] == [1, 3]
    assert unlink(tickets, 9) is tickets


def test_the_webhook_takes_the_previous_secret_only_while_it_is_set() -> None:
    body = b'{"type": "other"}'
    stamp = "2026-03-02T10:00:00Z"

    def signed(secret: str) -> dict[str, str]:
        digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        return {webhook.SIGNATURE: base64.b64encode(digest).decode(), webhook.TIMESTAMP: stamp}

    assert webhook.verify(("new", "old"), signed("old"), body, T0)
    assert webhook.verify(("new", "old"), signed("new"), body, T0)
    assert webhook.verify("new", signed("new"), body, T0)
    for secrets in (("new", None), "new", ("new", "")):
        with pytest.raises(webhook.WebhookRefused) as e:
            webhook.verify(secrets, signed("old"), body, T0)
        assert e.value.reason == "bad signature"
    with pytest.raises(webhook.WebhookRefused):
        webhook.verify((None, None), signed("old"), body, T0)


def test_the_previous_webhook_secret_is_read_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARROOM_ZENDESK_WEBHOOK_SECRET_PREVIOUS", "wh-0ld-s3c")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    previous = settings.zendesk_webhook_secret_previous
    assert previous is not None and previous.get_secret_value() == "wh-0ld-s3c"
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "wh-0ld-s3c" not in shown
