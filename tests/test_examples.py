"""The sample files in examples/ are the ones a newcomer starts from: the bot loads them as
they are and a declaration uses what they say (the IC rotation, the exec channel, the account's
ARR and CSM, its executive contact and time zone)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.config import load_config
from bot.runtime import Runtime
from bot.settings import Settings
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from protocols.loader import load_protocol
from tests.conftest import today
from tests.rooms import shown, wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_sample_config_is_valid_and_says_what_it_shows() -> None:
    protocol = load_protocol()
    config = load_config(EXAMPLES / "warroom.yaml", tuple(c.id for c in protocol.criteria))
    assert config.vp and config.incident_commanders and config.exec_channel
    assert set(config.responders) <= {c.id for c in protocol.criteria}


def test_the_sample_customer_insights_is_a_list_of_named_accounts() -> None:
    data = yaml.safe_load((EXAMPLES / "customer_insights.yaml").read_text())
    names = [c["name"] for c in data["customers"]]
    assert names and len(names) == len(set(names))


@pytest.fixture
def config_file() -> Path:
    return EXAMPLES / "warroom.yaml"


@pytest.fixture
def memory_dir(tmp_path: Path) -> Path:
    root = tmp_path / "Agent_Memory"
    semantic = root / "_knowledge" / "semantic"
    semantic.mkdir(parents=True)
    shutil.copy(EXAMPLES / "customer_insights.yaml", semantic / "customer_insights.yaml")
    return root


def test_a_declaration_with_the_sample_files(
    slack: SlackDriver, fake_slack: FakeSlack, runtime: Runtime, settings: Settings
) -> None:
    assert settings.config_file == EXAMPLES / "warroom.yaml"
    slack.command("Initech: invoices fail to export")

    channel = fake_slack.channel_by_name(f"esc-{today()}-initech")
    assert channel is not None
    esc = runtime.store.by_channel(channel.id)
    assert esc is not None
    # the rotation's first IC, the VP, and the account's CSM (its ARR makes it a churn risk)
    assert esc.ic == "U0INCCMDR"
    assert {"U0INCCMDR", "U0VPSUPRT", "U0CSMGR01"} <= channel.members
    assert esc.arr == 480000 and "arr_churn_risk" in esc.criteria
    assert len(fake_slack.messages_in("exec-escalations")) == 1

    # The offline drafter writes to the account's contact as the sample greets them, in its
    # time zone.
    text = f"<@{fake_slack.bot_user_id}> draft update"
    ts = fake_slack.add_message(channel.id, "U0INCCMDR", text)
    slack.event(
        {"type": "app_mention", "user": "U0INCCMDR", "text": text, "channel": channel.id, "ts": ts}
    )

    def thread() -> list:
        return [m for m in fake_slack.messages_in(channel.id) if m.thread_ts == ts]

    wait_until(lambda: any("Dear" in shown(m) for m in thread()), what="the draft")
    draft = "\n".join(shown(m) for m in thread())
    assert "Dear Ms Whitfield," in draft
    assert "CST" in draft or "CDT" in draft
