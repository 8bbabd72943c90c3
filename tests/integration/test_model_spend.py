"""What the model cost, end to end: every call the war room makes through the real agent (the
real anthropic client against the loopback Messages API) logs its usage in the real Redis,
the offline drafter logs nothing, and `warroom report` adds the month's calls up at the
prices in `agents.pricing`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from agents import pricing
from agents.vp import DEFAULT_MODEL
from bot import store as store_module
from bot.report import main, month_spend
from bot.store import Keys, Store, usage_month
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, T0
from tests.rooms import Room, buttons, wait_until

MONTH = usage_month(T0)  # the in-process runtime's clock stands in T0's month


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, prefix: str) -> None:
    """`warroom report`'s environment: this test's Redis and prefix, no config file."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("WARROOM_REDIS_PREFIX", prefix)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


@pytest.fixture
def store(redis_client: redis.Redis, prefix: str) -> Store:
    return Store(redis_client, Keys(prefix))


def _report(capsys: pytest.CaptureFixture, *args: str) -> str:
    assert main(list(args)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def _usage(record) -> dict[str, int]:
    return {name: record.usage[name] for name in pricing.USAGE_FIELDS}


@pytest.mark.usefixtures("env")
def test_the_report_adds_up_what_the_war_rooms_model_calls_cost(
    room: Room, fake_anthropic, store: Store, capsys: pytest.CaptureFixture
) -> None:
    room.mention("draft update")
    room.mention("draft update")  # the second reads the cached prompt prefix
    room.mention("What should we tell them about the ETA?")
    room.mention("review")
    wait_until(lambda: len(store.model_usage(MONTH)) == 4, what="four calls logged")
    calls = [r for r in fake_anthropic.requests if r.usage is not None]
    assert len(calls) == 4

    logged = store.model_usage(MONTH)
    assert [e["kind"] for e in logged] == ["customer_update", "customer_update", "answer", "review"]
    assert {e["escalation"] for e in logged} == {room.esc_id}
    assert {e["model"] for e in logged} == {DEFAULT_MODEL}
    assert [{k: e[k] for k in pricing.USAGE_FIELDS} for e in logged] == [_usage(r) for r in calls]
    assert logged[1]["cache_read_input_tokens"] > 0

    data = json.loads(_report(capsys, "--format", "json", "--month", MONTH))["model_spend"]
    assert data["currency"] == "USD"
    assert data["prices_taken"] == pricing.PRICES_TAKEN.isoformat()
    this, last = data["months"]
    assert (this["month"], last["month"]) == (MONTH, usage_month(T0.replace(day=1) - timedelta(1)))
    costs = [pricing.cost(DEFAULT_MODEL, _usage(r)) for r in calls]
    total = sum(costs, Decimal(0))
    assert this["calls"] == 4 and this["unpriced_calls"] == 0
    assert this["cost_usd"] == float(total) > 0
    for name in pricing.USAGE_FIELDS:
        assert this[name] == sum(_usage(r)[name] for r in calls)
    assert this["total_tokens"] == sum(sum(_usage(r).values()) for r in calls)
    by_kind = this["by_kind"]
    assert set(by_kind) == {"customer_update", "answer", "review"}
    assert by_kind["customer_update"]["calls"] == 2
    assert by_kind["customer_update"]["cost_usd"] == float(costs[0] + costs[1])
    assert by_kind["answer"]["cost_usd"] == float(costs[2])
    assert by_kind["review"]["cost_usd"] == float(costs[3])
    assert this["by_model"] == {
        DEFAULT_MODEL: {
            k: v
            for k, v in this.items()
            if k in ("calls", *pricing.USAGE_FIELDS, "total_tokens", "cost_usd", "unpriced_calls")
        }
    }
    assert last["calls"] == 0 and last["cost_usd"] == 0 and last["by_kind"] == {}

    markdown = _report(capsys, "--month", MONTH)
    spend = markdown[markdown.index("## Model spend") :]
    assert f"| {MONTH} | 4 | " in spend
    assert f"${total:.4f} |" in spend
    assert f"| {MONTH} | `review` | 1 | " in spend
    assert f"| {MONTH} | `{DEFAULT_MODEL}` | 4 | " in spend


def test_offline_drafts_log_no_usage(
    agent_runtime, fake_slack, fake_anthropic, store: Store
) -> None:
    rt = agent_runtime(anthropic_api_key=None)  # no key: every draft is the offline drafter's
    room = Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)
    ts = room.mention("draft update")
    wait_until(
        lambda: room.thread(ts) and "not sent" in str(room.thread(ts)[0].blocks), what="draft"
    )
    room.mention("review")
    assert fake_anthropic.requests == []
    assert store.model_usage(MONTH) == []


def test_a_usage_record_redis_drops_leaves_the_draft_whole(
    agent_runtime, fake_slack, proxy, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    rt = agent_runtime(redis_url=proxy.url)
    room = Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)
    proxy.drop_before("RPUSH", ":model-usage:", times=10)
    ts = room.mention("draft update")
    (draft,) = room.thread(ts)
    assert buttons(draft) == ["draft_approve", "draft_edit", "draft_regenerate"]
    assert "draft's token usage was not recorded" in caplog.text
    assert store.model_usage(MONTH) == []


@pytest.mark.usefixtures("env")
def test_with_no_usage_logged_the_report_shows_nothing_spent(
    capsys: pytest.CaptureFixture,
) -> None:
    now = datetime.now(UTC)
    data = json.loads(_report(capsys, "--format", "json"))["model_spend"]
    this, last = data["months"]
    assert this["month"] == usage_month(now)
    assert this["month"] > last["month"]
    for month in (this, last):
        assert month["calls"] == 0 and month["cost_usd"] == 0 and month["total_tokens"] == 0
        assert month["by_kind"] == {} and month["by_model"] == {}

    markdown = _report(capsys)
    assert "## Model spend" in markdown
    assert f"| {usage_month(now)} | 0 | 0 | 0 | 0 | 0 | 0 | $0.0000 |" in markdown
    assert "| no model calls |" in markdown


@pytest.mark.usefixtures("env")
def test_the_report_shows_this_month_and_last_only(
    store: Store, capsys: pytest.CaptureFixture
) -> None:
    now = datetime.now(UTC)
    last_month = now.replace(day=1) - timedelta(days=1)
    before = last_month.replace(day=1) - timedelta(days=1)
    usage = {
        "input_tokens": 2_000,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 6_000,
        "output_tokens": 400,
    }
    for at, model in (
        (now, "claude-sonnet-4-6"),
        (now, "claude-haiku-4-5-20251001"),
        (now, "claude-unknown-9"),
        (last_month, "claude-opus-4-8"),
        (before, "claude-opus-4-8"),
    ):
        store.log_model_usage(
            at, {"escalation": "esc-1", "kind": "answer", "model": model, **usage}
        )
    this, last = json.loads(_report(capsys, "--format", "json"))["model_spend"]["months"]

    priced = [pricing.cost(m, usage) for m in ("claude-sonnet-4-6", "claude-haiku-4-5")]
    assert this["calls"] == 3 and this["unpriced_calls"] == 1
    assert this["cost_usd"] == float(sum(priced, Decimal(0)))
    assert this["by_model"]["claude-unknown-9"]["cost_usd"] == 0
    assert this["by_model"]["claude-unknown-9"]["unpriced_calls"] == 1
    assert last["month"] == usage_month(last_month)
    assert last["calls"] == 1
    assert last["cost_usd"] == float(pricing.cost("claude-opus-4-8", usage))

    markdown = _report(capsys)
    assert "(and 1 call of a model with no known price)" in markdown
    assert "| `claude-unknown-9` | 1 | " in markdown
    assert "| unknown (no known price) |" in markdown


def test_a_months_usage_is_trimmed_to_its_latest_calls_and_expires(
    store: Store, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "USAGE_MAX_CALLS", 3)
    for n in range(5):
        store.log_model_usage(T0, {"escalation": f"esc-{n}", "kind": "answer", "model": "m"})
    assert [e["escalation"] for e in store.model_usage(MONTH)] == ["esc-2", "esc-3", "esc-4"]
    assert store.model_usage(MONTH)[0]["at"] == T0.isoformat()
    ttl = redis_client.ttl(store.keys.model_usage(MONTH))
    assert 0 < ttl <= store_module.USAGE_KEEP
    assert store.model_usage(usage_month(T0 + timedelta(days=40))) == []


def test_month_spend_of_nothing_is_zero() -> None:
    spend = month_spend("2026-03", [])
    assert spend.total.calls == 0 and spend.total.cost == 0 and spend.by_kind == {}


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("month", ["2026-13", "March", "2026-3", "0001-01"])
def test_a_bad_month_is_one_line_and_exit_2(month: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["--month", month]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--month" in err
