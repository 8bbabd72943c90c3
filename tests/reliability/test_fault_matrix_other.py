"""The fault matrix's last rows: the Slack methods no action's row calls, each with its answer
lost after Slack acted. A refusal told only to the person (`chat.postEphemeral`), App Home
(`views.publish`), and a rollback's archive (`conversations.archive`): each must end as the
run without the fault."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.reliability import test_fault_matrix as matrix
from tests.reliability import test_fault_matrix_declare as declarations
from tests.reliability.test_fault_matrix import MEMBER, normalised, state
from tests.reliability.test_fault_matrix_declare import Declaration
from tests.rooms import Room

pytestmark = pytest.mark.slow

# The rooms of the action rows, and the declarations of the declaration row.
fresh = matrix.fresh
declaring = declarations.declaring


def refused(room: Room) -> None:
    """Someone in the room, neither IC nor VP nor declarer, tries to resolve it."""
    room.mention("resolve fixed", user=MEMBER)


def test_a_refusal_told_only_to_the_person_whose_answer_is_lost_is_told_once(
    fresh, fake_slack
) -> None:
    clean = fresh("refusal")
    before = len(fake_slack.calls)
    refused(clean)
    calls = [c.method for c in fake_slack.calls[before:]]
    expected = normalised(state(clean), clean)
    assert "chat.postEphemeral" in calls and "only the incident commander" in expected["room"]
    found = {}
    for n, method in enumerate(calls):
        nth = calls[:n].count(method)
        room = fresh("refusal")
        fired = len(fake_slack.fired)
        fake_slack.lose_answer_next(method, skip=nth)
        refused(room)
        hit = len(fake_slack.fired) > fired
        fake_slack.clear_faults()
        got = normalised(state(room), room)
        if hit and got != expected:
            found[f"{method} #{nth + 1}"] = {p: got[p] for p in got if got[p] != expected[p]}
    assert not found, found


def test_app_home_whose_publish_answer_is_lost_shows_the_same(fresh, fake_slack) -> None:
    room = fresh("home")

    def home(user: str) -> dict[str, Any]:
        room.slack.event(
            {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
        )
        return fake_slack.home_views[user]["blocks"]

    expected = home("U0INCCMDR")
    fired = len(fake_slack.fired)
    fake_slack.lose_answer_next("views.publish")
    got = home("U0INCCMDR")  # opened again: the same tab, published under the lost answer
    assert len(fake_slack.fired) > fired
    assert got == expected and "Initech0" in str(got)


def test_a_rollback_whose_archive_answer_is_lost_ends_as_without_it(
    declaring, proxy, fake_slack
) -> None:
    """A room Redis keeps failing is rolled back: the channel archived, nothing kept, the
    declarer told once; with the archive's answer lost, the same."""

    def rolled_back(run: Declaration) -> dict[str, str]:
        run.rt.declaring.pacing = replace(run.rt.declaring.pacing, give_up=1.0, retry=0.2)
        proxy.drop_before("HSET", ":scheduler:jobs", times=10_000)
        run.slack.command(f"{run.customer}: TPS reports missing --ic <@U0INCCMDR>")
        run.url = run.slack.last_response_url
        run.settled()
        proxy.clear()
        return run.state()

    expected = rolled_back(declaring())
    assert "True" in expected["rooms"] and "No war room" in expected["told"]
    fired = len(fake_slack.fired)
    fake_slack.lose_answer_next("conversations.archive")
    got = rolled_back(declaring())
    assert len(fake_slack.fired) > fired
    assert got == expected
