"""Unit tests of bot.slack.mentions: who a mention counts against, and how `@vp ...` reads."""

from __future__ import annotations

import pytest

from bot.slack.mentions import UNKNOWN_CALLER, Caller, caller_of, parse_mention


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


NAMES = {"U0DANASMI": "Dana Smith"}.get


@pytest.mark.parametrize(
    "wire",
    [
        "<@U0BOT> action <@U0DANASMI> fix the retry storm",
        "<@U0BOT> action <@U0DANASMI|Dana Smith> fix the retry storm",
        "<@U0BOT> action <@U0DANASMI|Dana Smith>, fix the retry storm",
        "<@U0BOT> action  <@U0DANASMI|Dana Smith>: fix the retry storm",
    ],
)
def test_a_mention_is_one_word_however_many_its_name_has(wire: str) -> None:
    said = parse_mention(wire, NAMES)
    assert said.command == "action"
    assert said.head.startswith("<@U0DANASMI") and said.head.endswith(">")
    assert said.tail == "fix the retry storm"
    assert said.argument.startswith("@Dana Smith")


def test_the_words_after_the_first_are_read_as_people_read_them() -> None:
    said = parse_mention("<@U0BOT> action <@U0DANASMI> tell <@U0DANASMI> &amp; co", NAMES)
    assert said.tail == "tell @Dana Smith & co"
    assert parse_mention("<@U0BOT> action", NAMES).head == ""
    typed = parse_mention("<@U0BOT> action @Dana Smith fix it", NAMES)
    assert (typed.head, typed.tail) == ("@Dana", "Smith fix it")
