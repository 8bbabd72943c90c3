"""The Zendesk adapter at the wire: the real client (httpx) against the loopback Zendesk, with
its authentication, JSON shapes, rate limits, server errors, slow answers, deleted and merged
tickets; letters added to a ticket exactly once (the record in the real Redis); Zendesk's
signed webhooks verified and read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
import redis

from bot.desk.desk import DeskRefused, DeskUnavailable, TicketGone, Unsure
from bot.desk.letters import Step, TicketLetter, TicketLetters, escalation_tag, letter_tag
from bot.desk.webhook import WebhookRefused, comment_of, verify
from bot.desk.zendesk import ZendeskDesk
from bot.domain.tickets import is_customer_reply
from loopback.zendesk import ZendeskLoopback

SECRET = "whsec-test-0123456789"


@pytest.fixture
def zendesk() -> Iterator[ZendeskLoopback]:
    with ZendeskLoopback() as zd:
        yield zd


@pytest.fixture
def account(zendesk: ZendeskLoopback) -> dict[str, int]:
    org = zendesk.add_organization("Initech")
    dana = zendesk.add_user("Dana Whitfield", "dana@initech.example", organization_id=org)
    victoria = zendesk.add_user("Victoria Vance", "victoria@vendor.example", role="agent")
    ticket = zendesk.add_ticket(
        "Exports fail since 09:40", dana, priority="urgent", tags=("enterprise",)
    )
    return {"org": org, "dana": dana, "victoria": victoria, "ticket": ticket}


_OPEN: list[ZendeskDesk] = []


@pytest.fixture(autouse=True)
def _close_desks() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _desk(zendesk: ZendeskLoopback, token: str | None = None, **kwargs: object) -> ZendeskDesk:
    slept: list[float] = []
    desk = ZendeskDesk(
        zendesk.account_url,
        zendesk.email,
        token or zendesk.token,
        api_url=zendesk.url,
        sleep=slept.append,
        **kwargs,  # type: ignore[arg-type]
    )
    desk.slept = slept  # type: ignore[attr-defined]
    _OPEN.append(desk)
    return desk


def test_a_ticket_is_read_with_its_requester_and_organisation(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    desk = _desk(zendesk)
    ticket = desk.ticket(account["ticket"])
    assert ticket.subject == "Exports fail since 09:40"
    assert ticket.priority == "urgent" and ticket.status == "open"
    assert ticket.tags == ("enterprise",)
    assert ticket.requester is not None and ticket.requester.name == "Dana Whitfield"
    assert ticket.organization == "Initech" and ticket.organization_id == account["org"]
    assert ticket.url == f"https://acme.zendesk.com/agent/tickets/{account['ticket']}"
    auth = zendesk.seen("GET", "/tickets/")[0].headers["Authorization"]
    assert auth.startswith("Basic ")


def test_wrong_credentials_are_refused_in_words_that_name_the_variables(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    with pytest.raises(DeskRefused) as e:
        _desk(zendesk, token="wrong").ticket(account["ticket"])
    assert "WARROOM_ZENDESK_TOKEN" in e.value.message and "wrong" not in e.value.message


def test_deleted_and_merged_tickets_are_gone(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    other = zendesk.add_ticket("Same again", account["dana"])
    zendesk.merge(other, account["ticket"])
    with pytest.raises(TicketGone) as merged:
        _desk(zendesk).ticket(other)
    assert merged.value.merged
    zendesk.delete(account["ticket"])
    with pytest.raises(TicketGone) as deleted:
        _desk(zendesk).ticket(account["ticket"])
    assert not deleted.value.merged


def test_a_short_retry_after_is_waited_out_and_a_long_one_is_not(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    desk = _desk(zendesk)
    zendesk.fault(status=429, retry_after=2)
    assert desk.ticket(account["ticket"]).id == account["ticket"]
    assert desk.slept == [2.0]  # type: ignore[attr-defined]
    zendesk.fault(status=429, retry_after=600)
    with pytest.raises(DeskUnavailable):
        desk.ticket(account["ticket"])


def test_reads_are_tried_again_on_a_5xx_a_bounded_number_of_times(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    desk = _desk(zendesk)
    zendesk.fault(status=503, path="/tickets/")
    assert desk.ticket(account["ticket"]).subject
    zendesk.fault(status=500, path="/tickets/", times=10)
    before = len(zendesk.seen("GET", "/tickets/"))
    with pytest.raises(DeskUnavailable):
        desk.ticket(account["ticket"])
    assert len(zendesk.seen("GET", "/tickets/")) - before == 3


def test_a_slow_zendesk_is_a_timeout_not_a_hang(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    desk = _desk(zendesk, timeout=httpx2.Timeout(0.2))
    zendesk.fault(status=200, delay=1.0, times=3)
    with pytest.raises(DeskUnavailable):
        desk.ticket(account["ticket"])


def test_the_organisations_tickets_are_counted_since_a_time(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    now = datetime.now(UTC)
    for n in range(3):
        zendesk.add_ticket(f"Also broken {n}", account["dana"], created_at=now - timedelta(hours=n))
    desk = _desk(zendesk)
    assert desk.count_since(account["org"], now - timedelta(minutes=90)) == 3  # two + the first
    assert "organization%3A" in desk.search_url(account["org"], now)


def test_an_agent_is_found_by_email_and_a_customer_is_not(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    desk = _desk(zendesk)
    agent = desk.agent_by_email("Victoria@vendor.example")
    assert agent is not None and agent.id == account["victoria"]
    assert desk.agent_by_email("dana@initech.example") is None


# --- letters on the ticket ------------------------------------------------------------------


def _letter(account: dict[str, int], version: int = 1) -> TicketLetter:
    return TicketLetter(
        escalation="esc-initech-exports",
        draft="d1",
        version=version,
        ticket_id=account["ticket"],
        text="Dear Dana,\n\nExports are failing; the CSV export works meanwhile.\n\nVictoria",
        signer_email="victoria@vendor.example",
    )


def _route(
    zendesk: ZendeskLoopback, redis_client: redis.Redis, prefix: str, **kwargs: object
) -> TicketLetters:
    return TicketLetters(redis_client, prefix, _desk(zendesk), status_on_send="pending", **kwargs)  # type: ignore[arg-type]


def test_a_letter_is_added_once_as_the_signers_public_comment(
    zendesk: ZendeskLoopback, account: dict[str, int], redis_client: redis.Redis, prefix: str
) -> None:
    route = _route(zendesk, redis_client, prefix)
    letter = _letter(account)
    first = route.send(letter)
    again = route.send(letter)
    assert first.step is Step.ADDED and again.step is Step.ALREADY
    assert again.comment_id == first.comment_id
    public = [
        c for c in zendesk.comments(account["ticket"]) if c["author_id"] == account["victoria"]
    ]
    assert [c["body"] for c in public] == [letter.text] and public[0]["public"]
    ticket = zendesk.ticket(account["ticket"])
    assert ticket["status"] == "pending"
    assert escalation_tag(letter.escalation) in ticket["tags"]
    assert letter_tag(letter) in ticket["tags"]
    assert len(zendesk.seen("PUT")) == 1


def test_a_lost_answer_is_checked_before_trying_again(
    zendesk: ZendeskLoopback, account: dict[str, int], redis_client: redis.Redis, prefix: str
) -> None:
    route = _route(zendesk, redis_client, prefix)
    letter = _letter(account)
    zendesk.fault(status=502, method="PUT", apply=True)  # it lands; the answer is lost
    lost = route.send(letter)
    assert lost.step is Step.FAILED and lost.retry
    assert route.send(letter).step is Step.ALREADY
    assert route.send(letter).step is Step.ALREADY
    comments = [c for c in zendesk.comments(account["ticket"]) if c["body"] == letter.text]
    assert len(comments) == 1
    assert len(zendesk.seen("PUT")) == 1


def test_a_lost_answer_that_did_not_land_is_sent_again(
    zendesk: ZendeskLoopback, account: dict[str, int], redis_client: redis.Redis, prefix: str
) -> None:
    route = _route(zendesk, redis_client, prefix)
    letter = _letter(account)
    zendesk.fault(status=500, method="PUT")  # refused before anything landed
    assert route.send(letter).step is Step.FAILED
    assert route.send(letter).step is Step.ADDED
    assert len([c for c in zendesk.comments(account["ticket"]) if c["body"] == letter.text]) == 1


def test_a_rate_limited_update_is_waited_out(
    zendesk: ZendeskLoopback, account: dict[str, int], redis_client: redis.Redis, prefix: str
) -> None:
    route = _route(zendesk, redis_client, prefix)
    zendesk.fault(status=429, retry_after=1, method="PUT")
    assert route.send(_letter(account)).step is Step.ADDED
    assert len(zendesk.seen("PUT")) == 2


def test_two_processes_sending_at_once_add_it_once(
    zendesk: ZendeskLoopback, account: dict[str, int], redis_client: redis.Redis, prefix: str
) -> None:
    routes = [_route(zendesk, redis_client, prefix) for _ in range(2)]
    zendesk.fault(status=200, delay=0.3, method="PUT")
    letter = _letter(account)
    results: list[Step] = []
    threads = [
        threading.Thread(target=lambda r=r: results.append(r.send(letter).step)) for r in routes
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted([Step.ADDED, Step.BUSY])
    assert len(zendesk.seen("PUT")) == 1


def test_a_signer_without_an_agent_and_a_closed_ticket_fail_in_one_line(
    zendesk: ZendeskLoopback, account: dict[str, int], redis_client: redis.Redis, prefix: str
) -> None:
    route = _route(zendesk, redis_client, prefix)
    nobody = TicketLetter(**{**_letter(account).__dict__, "signer_email": "who@vendor.example"})
    failed = route.send(nobody)
    assert failed.step is Step.FAILED and not failed.retry and "agent" in failed.reason
    other = zendesk.add_ticket("Merged away", account["dana"])
    zendesk.merge(other, account["ticket"])
    closed = route.send(TicketLetter(**{**_letter(account, 2).__dict__, "ticket_id": other}))
    assert closed.step is Step.FAILED and not closed.retry
    assert "\n" not in closed.reason
    assert not zendesk.seen("PUT") or all("Merged" not in str(s.body) for s in zendesk.seen("PUT"))


def test_a_timeout_on_the_update_is_unsure_not_unavailable(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    desk = _desk(zendesk, timeout=httpx2.Timeout(0.2))
    zendesk.fault(status=200, delay=1.0, method="PUT")
    with pytest.raises(Unsure):
        desk.add_public_comment(
            account["ticket"], "x", author_id=account["victoria"], status=None, tags=[]
        )


# --- webhooks -------------------------------------------------------------------------------


def test_a_signed_comment_event_is_verified_and_read(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    comment = zendesk.add_comment(account["ticket"], account["dana"], "Still broken here.")
    body = zendesk.comment_event(account["ticket"], comment)
    headers = {k.lower(): v for k, v in zendesk.signed_headers(body, SECRET).items()}
    now = datetime.now(UTC)
    assert verify(SECRET, headers, body, now)
    seen = comment_of(body)
    assert seen is not None and seen.comment_id == comment and seen.ticket_id == account["ticket"]
    assert seen.author_name == "Dana Whitfield" and not seen.author_is_staff and seen.public
    assert is_customer_reply(seen, linked=True, our_agent_ids=set())
    assert not is_customer_reply(seen, linked=False, our_agent_ids=set())


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "unsigned"])
def test_a_webhook_not_signed_by_zendesk_just_now_is_refused(
    zendesk: ZendeskLoopback, account: dict[str, int], tamper: str
) -> None:
    comment = zendesk.add_comment(account["ticket"], account["dana"], "Hello")
    body = zendesk.comment_event(account["ticket"], comment)
    now = datetime.now(UTC)
    stamp = (
        (now - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ") if tamper == "stale" else None
    )
    headers = {
        k.lower(): v
        for k, v in zendesk.signed_headers(
            body, "other" if tamper == "secret" else SECRET, stamp
        ).items()
    }
    if tamper == "body":
        body = body.replace(b"Hello", b"Goodbye")
    if tamper == "unsigned":
        headers.pop("x-zendesk-webhook-signature")
    with pytest.raises(WebhookRefused) as e:
        verify(SECRET, headers, body, now)
    assert e.value.status == 401


def test_internal_notes_and_staff_comments_are_not_replies(
    zendesk: ZendeskLoopback, account: dict[str, int]
) -> None:
    note = zendesk.add_comment(account["ticket"], account["dana"], "internal", public=False)
    staff = zendesk.add_comment(account["ticket"], account["victoria"], "We are on it")
    for comment in (note, staff):
        seen = comment_of(zendesk.comment_event(account["ticket"], comment))
        assert seen is not None
        assert not is_customer_reply(seen, linked=True, our_agent_ids=set())
