"""Property-based: whatever people type or submit, the bot never crashes and always names the
problem. Covers the slash grammar, mention texts, form submissions, protocol and config YAML."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import ConfigError, load_config
from bot.slack.forms import read_form
from bot.slack.mentions import COMMANDS, parse_mention
from bot.slack.parse import Declare, Help, InvalidCommand, OpenForm, parse_escalate
from protocols.loader import ProtocolError, load_protocol

PROTOCOL = load_protocol()
CRITERIA = PROTOCOL.criterion_ids
slack_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300
) | st.builds(
    lambda a, b, c: f"{a}: {b} {c}",
    st.text(max_size=40),
    st.text(max_size=80),
    st.sampled_from(["--arr", "--ic", "--criteria", "--private", "--arr=", "--x", "<@U1|a>", ""]),
)


@given(slack_text)
@settings(max_examples=300, deadline=None)
def test_the_slash_grammar_never_crashes(text: str) -> None:
    try:
        result = parse_escalate(text, CRITERIA)
    except InvalidCommand as e:
        # Each problem a line of its own that names it.
        assert e.problems and all(p.strip() and "\n" not in p for p in e.problems)
    else:
        assert isinstance(result, Help | OpenForm | Declare)


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_mention_texts_never_crash(text: str) -> None:
    mention = parse_mention(f"<@UBOT> {text}")
    assert mention.command in (*COMMANDS, "")


value = st.one_of(st.none(), st.text(max_size=50), st.integers(), st.lists(st.text(max_size=5)))


@given(
    st.dictionaries(
        st.sampled_from(["customer", "summary", "arr", "criteria", "ic", "private", "junk"]),
        st.dictionaries(
            st.just("value"),
            st.fixed_dictionaries(
                {},
                optional={
                    "value": st.one_of(st.none(), st.text(max_size=100)),
                    "selected_user": st.one_of(st.none(), st.text(max_size=12)),
                    "selected_options": st.lists(
                        st.fixed_dictionaries({"value": st.text(max_size=30)}), max_size=4
                    ),
                },
            ),
        ),
    )
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_form_submissions_never_crash(values: dict) -> None:
    result = read_form(values, "U0DECLARER", CRITERIA)
    if isinstance(result, dict):
        assert result and all(isinstance(m, str) and m for m in result.values())


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "vp",
                "incident_commanders",
                "exec_channel",
                "responders",
                "authorized_roles",
                "flag_terms",
                "other",
            ]
        ),
        yaml_values,
        max_size=5,
    )
)
@settings(max_examples=200, deadline=None)
def test_config_files_never_crash(tmp_path_factory, data: dict) -> None:
    path = tmp_path_factory.mktemp("cfg") / "warroom.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_config(path, CRITERIA)
    except ConfigError as e:
        assert str(e).startswith(str(path))


@given(
    st.dictionaries(
        st.sampled_from(["id", "name", "description", "version", "criteria", "steps", "extra"]),
        yaml_values,
        max_size=6,
    )
)
@settings(max_examples=200, deadline=None)
def test_protocol_files_never_crash(tmp_path_factory, data: dict) -> None:
    path = tmp_path_factory.mktemp("proto") / "custom.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_protocol(path)
    except ProtocolError as e:
        assert e.problems and all(p.startswith(str(path)) for p in e.problems)
