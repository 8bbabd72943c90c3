"""warroom.yaml: unknown keys and wrong types are refused with the key's path."""

from __future__ import annotations

import pytest
import yaml

from bot.config import ConfigError, load_config
from protocols.loader import load_protocol

CRITERIA = load_protocol().criterion_ids


def write(tmp_path, data) -> str:
    path = tmp_path / "warroom.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def test_spec_example_loads(tmp_path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            {
                "vp": ["U0VPSUPRT"],
                "incident_commanders": ["U0INCCMDR", "U0OTHER"],
                "exec_channel": "exec-escalations",
                "responders": {
                    "security_incident": ["S0SECURTY"],
                    "arr_churn_risk": ["U0CSMGR01"],
                },
            },
        ),
        CRITERIA,
    )
    assert cfg.vp == ("U0VPSUPRT",)
    assert cfg.responders_for(("arr_churn_risk", "security_incident")) == [
        "U0CSMGR01",
        "S0SECURTY",
    ]


def test_no_file_is_the_empty_config() -> None:
    assert load_config(None, CRITERIA).incident_commanders == ()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"vps": ["U1"]}, "vps: unknown key"),
        ({"vp": "U0VPSUPRT"}, "vp:"),
        ({"vp": ["ivan"]}, "vp[0]: 'ivan' is not a Slack id"),
        ({"incident_commanders": [42]}, "incident_commanders[0]"),
        ({"responders": {"security_incident": ["nope"]}}, "responders.security_incident[0]"),
        ({"responders": {"aliens": ["U0X1"]}}, "responders.aliens: unknown criterion"),
        ({"exec_channel": ["a"]}, "exec_channel"),
        ("- just\n- a list\n", "mapping"),
        ("vp: [U1\n", "not valid YAML (line"),
    ],
)
def test_bad_config_names_the_file_and_key(tmp_path, data, needle) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as e:
        load_config(path, CRITERIA)
    assert str(e.value).startswith(path)
    assert needle in str(e.value)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", CRITERIA)


def test_press_contact_is_read_and_must_be_text(tmp_path) -> None:
    cfg = load_config(write(tmp_path, {"press_contact": "Priya Shah, press@example.com"}), CRITERIA)
    assert cfg.press_contact == "Priya Shah, press@example.com"
    assert load_config(write(tmp_path, {}), CRITERIA).press_contact is None
    with pytest.raises(ConfigError, match="press_contact"):
        load_config(write(tmp_path, {"press_contact": ""}), CRITERIA)
