"""Unit tests of bot.slack.mentions: who a mention counts against, and how `@vp ...` reads."""

from __future__ import annotations

import pytest

from bot.slack.mentions import UNKNOWN_CALLER, Caller, caller_of


@pytest.mark.parametrize(
    ("event", "caller"),
    [
        ({"user": "U0DANA"}, Caller("U0DANA", is_bot=False)),
        ({"bot_id": "B0WORKFLOW"}, Caller("B0WORKFLOW", is_bot=True)),
        ({"bot_profile": {"id": "B0INTEGR"}}, Caller("B0INTEGR", is_bot=True)),
        ({"user": "U0BOTUSER", "bot_id": "B0APP"}, Caller("B0APP", is_bot=True)),
        ({"user": "", "bot_profile": None}, Caller(UNKNOWN_CALLER, is_bot=True)),
        ({}, Caller(UNKNOWN_CALLER, is_bot=True)),
    ],
    ids=["person", "workflow", "integration", "bot user", "nobody", "nothing"],
)
def test_every_caller_counts(event: dict, caller: Caller) -> None:
    assert caller_of(event) == caller
