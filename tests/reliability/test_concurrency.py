"""Two people acting at once have one effect: a double-submitted form, simultaneous clicks on
the same Done button, simultaneous approvals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bot.runtime import build_runtime
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today


def at_once(n: int, action: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_simultaneous_form_submits_open_one_room(settings, clock, fake_slack) -> None:
    rt = build_runtime(settings, clock=clock)  # real pools: the submits race for real
    try:
        slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
        slack.command("")
        deadline = time.monotonic() + 5
        while not fake_slack.views:  # the form opens after the ack
            assert time.monotonic() < deadline
            time.sleep(0.01)
        view = fake_slack.views[next(iter(fake_slack.views))]
        values = {
            "customer": {"value": {"type": "plain_text_input", "value": "Initech"}},
            "summary": {"value": {"type": "plain_text_input", "value": "TPS reports lost"}},
        }
        at_once(4, lambda i: slack.submit_view(view, values))
        rt.executor.shutdown(wait=True)
    finally:
        rt.close()
    assert len(fake_slack.calls_to("conversations.create")) == 1


def test_simultaneous_clicks_on_done_mark_it_once(slack, fake_slack, runtime) -> None:
    slack.command("Acme: checkout down")
    day = today()
    channel = fake_slack.channel_by_name(f"esc-{day}-acme")
    users = ["U0INCCMDR", "U0VPSUPRT", "U0DECLARER", "U0ENGINE1"]
    at_once(4, lambda i: slack.click(channel.id, "step_done", "assessment", user=users[i]))
    esc = runtime.store.by_channel(channel.id)
    done = [e for e in runtime.store.timeline(esc.id) if e.data.get("step") == "assessment"]
    assert len(done) == 1 and esc.step("assessment").done_by == done[0].actor
    assert len(fake_slack.calls_to("chat.update")) == 1
