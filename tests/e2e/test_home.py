"""App Home and the weekly digest through the production app and the loopback Slack."""

from __future__ import annotations

import time
from datetime import timedelta

from bot.domain.timers import digest_timer
from tests.conftest import today


def home_text(view: dict) -> str:
    parts = []
    for b in view["blocks"]:
        if isinstance(b.get("text"), dict):
            parts.append(b["text"]["text"])
        for f in b.get("fields") or []:
            parts.append(f["text"])
        for el in b.get("elements") or []:
            if isinstance(el.get("text"), str):
                parts.append(el["text"])
    return "\n".join(parts)


def open_home(slack, user: str) -> None:
    slack.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"})


def test_app_home_shows_open_escalations_own_ones_and_kpis(slack, fake_slack, runtime) -> None:
    slack.command("Acme: checkout down", user="U0DECLARER")
    slack.command("Wayne: breach suspected --private", user="U0DECLARER")
    open_home(slack, "U0DECLARER")
    text = home_text(fake_slack.home_views["U0DECLARER"])
    assert "*Yours* (2)" in text and "*All open* (2)" in text
    assert "Acme" in text and "Wayne" in text and "<@U0INCCMDR>" in text
    assert "next: Immediate assessment" in text
    assert "SLA compliance" in text and "*Last 30 days* — 2 escalations" in text

    open_home(slack, "U0ENGINE1")  # not in the private room
    other = home_text(fake_slack.home_views["U0ENGINE1"])
    assert "Acme" in other and "Wayne" not in other and "*All open* (1)" in other
    assert "*Last 30 days* — 1 escalation\n" in other  # counted in words, not "1 escalations"


def test_app_home_is_refreshed_when_an_escalation_changes(slack, fake_slack, runtime) -> None:
    slack.command("Acme: checkout down")
    open_home(slack, "U0VPSUPRT")
    published = len(fake_slack.calls_to("views.publish"))
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    slack.click(channel.id, "step_done", "assessment", user="U0INCCMDR")
    deadline = time.monotonic() + 10
    while len(fake_slack.calls_to("views.publish")) == published:
        assert time.monotonic() < deadline, "the viewer's tab was not refreshed"
        time.sleep(0.05)


def test_the_weekly_digest_is_posted_once(slack, fake_slack, runtime, clock) -> None:
    slack.command("Acme: checkout down")
    slack.command("Wayne: breach suspected --private")
    clock.advance(timedelta(days=6, hours=23))  # the Monday after
    week = digest_timer(runtime.clock()).detail
    runtime.timers.fire_digest(week)
    runtime.timers.fire_digest(week)  # a second firing (a stalled ex-leader): nothing more
    digests = [m for m in fake_slack.messages_in("exec-escalations") if "digest" in m.text]
    assert len(digests) == 1
    text = home_text({"blocks": digests[0].blocks})
    assert "Weekly escalation digest" in text and "Acme" in text
    assert "Wayne" not in text and "1 private escalation not listed" in text
    assert "Still open" in text
    assert any(j.startswith("digest:") for j in runtime.scheduler.job_ids())


def test_reconcile_keeps_one_weekly_digest(runtime) -> None:
    runtime.timers.reconcile()
    runtime.timers.reconcile()
    assert [j for j in runtime.scheduler.job_ids() if j.startswith("digest:")] == [
        digest_timer(runtime.clock()).id
    ]
