"""Where an account's letters go (the route and the mode in force), the record of each letter
sent, the letter a customer's reply belongs to, and the retries a failed letter gets (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import ConfigError, load_config
from bot.domain.delivery import (
    DeliveryMode,
    LetterStatus,
    Outgoing,
    RouteError,
    RouteKind,
    SentLetter,
    default_subject,
    has_subject,
    retry_after,
    route_of,
    signed_by,
)
from bot.domain.escalation import Escalation
from bot.domain.letters import last_sent, letter_for_reply, note_attempt
from bot.domain.timers import TimerKind, timers_for
from protocols.loader import load_protocol

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _esc(**changes: object) -> Escalation:
    return Escalation(
        id="esc-260302-initech",
        channel_id="C0WARROOM1",
        customer="Initech",
        summary="Exports failing",
        ic="U0INCCMDR",
        declarer="U0DECLARER",
        declared_at=T0,
        protocol_id="tier4",
        protocol_version=1,
        **changes,
    )


def _sent(**changes: object) -> SentLetter:
    values: dict[str, object] = {
        "draft": "d1",
        "version": 2,
        "route": RouteKind.EMAIL,
        "thread_ts": "1.000100",
        "to": ("dana@initech.example",),
        "status": LetterStatus.SENT,
        "first_attempt_at": T0,
        "sent_at": T0,
        "message_id": "<warroom.esc.1@vendor.example>",
    }
    return SentLetter(**{**values, **changes})


def test_a_route_is_read_with_the_mode_in_force() -> None:
    route = route_of(
        {
            "email": " dana@initech.example ",
            "cc": ["csm@vendor.example"],
            "slack_connect": "C0SHARED1",
        },
        None,
    )
    assert route.email == "dana@initech.example" and route.cc == ("csm@vendor.example",)
    assert route.kinds == (RouteKind.EMAIL, RouteKind.SLACK_CONNECT)
    assert route.mode is DeliveryMode.SEND_BUTTON and route.sends
    assert not route_of({"name": "Initech"}, "approve_sends").exists
    assert not route_of(None, None).sends


def test_the_organisations_off_wins_and_an_account_may_choose_otherwise() -> None:
    entry = {"email": "dana@initech.example", "delivery": "approve_sends"}
    assert route_of(entry, "send_button").mode is DeliveryMode.APPROVE_SENDS
    off = route_of(entry, "off")
    assert off.mode is DeliveryMode.OFF and off.mode_from == "warroom.yaml" and not off.sends
    own = route_of({**entry, "delivery": "off"}, "approve_sends")
    assert own.mode is DeliveryMode.OFF and own.mode_from == "the account"
    assert not route_of({**entry, "delivery": "approve_only"}, None).sends


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"email": "Dana <dana@initech.example>"}, "c[0].email: "),
        ({"email": "a@b.example, c@d.example"}, "c[0].email: "),
        ({"email": "dana@initech.example", "cc": ["ok@x.example", "nope"]}, "c[0].cc[1]: 'nope'"),
        ({"cc": ["csm@vendor.example"]}, "c[0].cc: copies need an `email`"),
        ({"email": "dana@initech.example", "bcc": "x@y.example"}, "c[0].bcc: "),
        ({"slack_connect": "ext-initech"}, "c[0].slack_connect: 'ext-initech' is not a channel"),
        ({"slack_connect": "U0SOMEONE1"}, "c[0].slack_connect: "),
        ({"email": "dana@initech.example", "delivery": "always"}, "c[0].delivery: 'always'"),
        ({"email": 42}, "c[0].email: expected text"),
    ],
)
def test_an_unusable_route_is_refused_with_its_key_path(entry: dict, said: str) -> None:
    with pytest.raises(RouteError) as raised:
        route_of(entry, None, "c[0]")
    assert str(raised.value).startswith(said)


def test_cc_never_repeats_the_addressee() -> None:
    route = route_of(
        {
            "email": "dana@initech.example",
            "cc": ["DANA@initech.example", "a@x.example", "a@x.example"],
        },
        None,
    )
    assert route.cc == ("a@x.example",)


def test_send_is_offered_only_while_a_route_is_open() -> None:
    route = route_of({"email": "dana@initech.example", "slack_connect": "C0SHARED1"}, None)
    both = Outgoing(route=route)
    assert both.may_send and both.unsent == (RouteKind.EMAIL, RouteKind.SLACK_CONNECT)
    one = Outgoing(route=route, letters=(_sent(),))
    assert one.unsent == (RouteKind.SLACK_CONNECT,) and one.may_send
    done = Outgoing(
        route=route, letters=(_sent(), _sent(route=RouteKind.SLACK_CONNECT, channel="C0SHARED1"))
    )
    assert not done.may_send
    assert not Outgoing(route=route, problem="WARROOM_SMTP_URL is not set").may_send
    off = route_of({"email": "dana@initech.example"}, "off")
    assert not Outgoing(route=off).may_send


def test_linked_tickets_are_a_route_of_their_own() -> None:
    alone = route_of(None, None).with_tickets((4711, 4712, 4711))
    assert alone.exists and alone.sends and alone.kinds == (RouteKind.TICKET,)
    assert alone.where(RouteKind.TICKET) == ("4711", "4712")
    assert Outgoing(route=alone).may_send
    both = route_of({"email": "dana@initech.example"}, None).with_tickets((4711,))
    assert both.kinds == (RouteKind.EMAIL, RouteKind.TICKET)
    assert not route_of(None, "approve_only").with_tickets((4711,)).sends
    assert not route_of(None, None).with_tickets(()).exists


def test_the_fingerprint_changes_with_every_destination_and_only_with_them() -> None:
    entry = {"email": "dana@initech.example", "cc": ["csm@vendor.example"]}
    route = route_of(entry, None).with_tickets((4711,))
    same = route_of(dict(entry, delivery="approve_sends"), None).with_tickets((4711,))
    assert route.fingerprint == same.fingerprint  # the mode is not a destination
    others = [
        route_of(dict(entry, cc=[]), None).with_tickets((4711,)),
        route_of(dict(entry, cc=["csm@vendor.example", "cfo@initech.example"]), None),
        route_of(dict(entry, email="cfo@initech.example"), None).with_tickets((4711,)),
        route_of(dict(entry, slack_connect="C0SHARED01"), None).with_tickets((4711,)),
        route_of(entry, None).with_tickets((4711, 4712)),
        route_of(entry, None),
    ]
    prints = {route.fingerprint, *(o.fingerprint for o in others)}
    assert len(prints) == len(others) + 1
    assert all(len(p) == 16 for p in prints)


def test_the_signer_is_the_name_under_the_closing() -> None:
    assert signed_by("Dear Dana,\n\nIt works.\n\nKind regards,\nVictoria Vance\nVP, Support") == (
        "Victoria Vance"
    )
    assert signed_by("Hi,\n\nThanks,\nVictoria") == "Victoria"
    assert signed_by("Dear Dana,\n\nIt works now. Thanks, all.") == ""
    assert has_subject("Subject: Exports\n\nDear Dana") and not has_subject("Dear Dana")
    assert default_subject("Init  ech") == "Update on the issue affecting Init ech"


def test_an_attempt_is_kept_and_a_sent_letter_stays_sent() -> None:
    failed = _sent(status=LetterStatus.FAILED, sent_at=None, result="temporary", retry_at=T0)
    esc, changed = note_attempt(_esc(), failed)
    assert changed and esc.letters == (failed,)
    again, changed = note_attempt(esc, failed)
    assert not changed and again == esc
    later = T0 + timedelta(minutes=1)
    sent = _sent(first_attempt_at=later, sent_at=later, attempts=2)
    esc, changed = note_attempt(esc, sent)
    assert changed and esc.letters[0].first_attempt_at == T0 and esc.letters[0].attempts == 2
    late_failure = failed.model_copy(update={"attempts": 3})
    assert note_attempt(esc, late_failure) == (esc, False)
    assert last_sent(esc) == esc.letters[0]


def test_a_reply_finds_its_letter() -> None:
    email = _sent()
    posted = _sent(
        draft="d2",
        route=RouteKind.SLACK_CONNECT,
        to=("C0SHARED1",),
        message_id=None,
        channel="C0SHARED1",
        ts="1700000000.000200",
    )
    later = posted.model_copy(update={"draft": "d3", "ts": "1700000100.000300"})
    failed = _sent(draft="d4", status=LetterStatus.FAILED, message_id="<warroom.esc.4@v.example>")
    esc = _esc(letters=(email, posted, later, failed))
    assert letter_for_reply(esc, message_id="<warroom.esc.1@vendor.example>") == email
    assert letter_for_reply(esc, message_id="warroom.esc.1@vendor.example") == email
    assert letter_for_reply(esc, message_id="<warroom.esc.4@v.example>") is None  # never sent
    assert letter_for_reply(esc, channel="C0SHARED1", thread_ts=posted.ts) == posted
    assert letter_for_reply(esc, channel="C0SHARED1") == later  # outside a thread: the last
    assert letter_for_reply(esc, channel="C0SHARED1", thread_ts="1.2") is None
    assert letter_for_reply(esc, channel="C0ELSEWHERE") is None
    assert letter_for_reply(esc) is None


def test_a_failed_letter_is_tried_again_with_growing_pauses_then_left_to_a_person() -> None:
    waits = [retry_after(n) for n in range(1, 8)]
    assert waits[:5] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16)]
    assert waits[5:] == [None, None]
    assert retry_after(1, 60) == timedelta(seconds=1)
    protocol = load_protocol(None)
    at = T0 + timedelta(minutes=2)
    failed = _sent(status=LetterStatus.FAILED, sent_at=None, retry_at=at)
    esc = _esc(letters=(failed, _sent(draft="d9")))
    (timer,) = [t for t in timers_for(esc, protocol, 1.0) if t.kind is TimerKind.DELIVERY]
    assert timer.at == at and timer.detail == "d1:email" and timer.id.endswith(":delivery:d1:email")
    given_up = esc.model_copy(update={"letters": (failed.model_copy(update={"retry_at": None}),)})
    assert not [t for t in timers_for(given_up, protocol, 1.0) if t.kind is TimerKind.DELIVERY]


def test_the_organisations_delivery_is_checked_with_its_key(tmp_path) -> None:
    path = tmp_path / "warroom.yaml"
    path.write_text("delivery: sometimes\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, ())
    assert f"{path}: delivery: " in str(raised.value)
    path.write_text("delivery: approve_sends\n")
    assert load_config(path, ()).delivery is DeliveryMode.APPROVE_SENDS
    assert load_config(None, ()).delivery is DeliveryMode.SEND_BUTTON
