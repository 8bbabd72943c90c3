"""Every request from "Slack" is verified: forged, stale or altered requests get 401 and change
nothing."""

from __future__ import annotations

import time

import pytest

from loopback.slack.driver import SlackDriver

BODY = (
    "command=%2Fescalate&text=Acme%3A+checkout+down&user_id=U0DECLARER&team_id=T0TEAM"
    "&trigger_id=t1&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fr"
)


def _no_side_effect(fake_slack, redis_client, prefix) -> None:
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []
    assert list(redis_client.scan_iter(match=f"{prefix}:*")) == []


@pytest.mark.parametrize(
    "tamper",
    [
        "forged signature",
        "no signature",
        "no timestamp",
        "timestamp 6 minutes old",
        "timestamp 6 minutes ahead",
        "body changed after signing",
        "signed with another secret",
    ],
)
def test_bad_requests_are_refused_with_401(
    slack: SlackDriver, fake_slack, redis_client, prefix, tamper: str
) -> None:
    headers = slack.headers(BODY, content_type="application/x-www-form-urlencoded")
    body = BODY
    if tamper == "forged signature":
        headers["x-slack-signature"] = "v0=" + "a" * 64
    elif tamper == "no signature":
        del headers["x-slack-signature"]
    elif tamper == "no timestamp":
        del headers["x-slack-request-timestamp"]
    elif tamper.startswith("timestamp"):
        skew = -360 if "old" in tamper else 360
        headers = slack.headers(
            BODY,
            content_type="application/x-www-form-urlencoded",
            timestamp=int(time.time()) + skew,
        )
    elif tamper == "body changed after signing":
        body = BODY.replace("Acme", "Evil")
    else:
        other = SlackDriver(fake_slack, "another-secret", app=slack.app)
        headers = other.headers(BODY, content_type="application/x-www-form-urlencoded")
    assert slack.send(body, headers).status == 401
    _no_side_effect(fake_slack, redis_client, prefix)


def test_a_request_signed_right_is_accepted(slack: SlackDriver) -> None:
    assert (
        slack.send(
            BODY, slack.headers(BODY, content_type="application/x-www-form-urlencoded")
        ).status
        == 200
    )
