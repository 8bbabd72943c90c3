"""`warroom report` end to end against the real Redis: the history written by the store, the
KPIs as JSON and Markdown on stdout, the files and PNG charts written with --out, and one
clear line (exit 2) when Redis or the arguments stand in the way."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from bot.domain.escalation import (
    Declaration,
    mark_step_done,
    open_escalation,
    record_customer_update,
    resolve,
)
from bot.domain.timeline import EventKind, event
from bot.report import main, parse_since
from bot.store import Keys, Store
from loopback.server import free_port
from protocols.loader import load_protocol

PROTOCOL = load_protocol()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHARTS = {"sla_compliance.png", "time_to_resolve.png", "escalations_per_week.png"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, prefix: str) -> None:
    """The report's environment: this test's Redis and prefix, the shipped protocol and no
    config file (run from an empty directory, so no ./warroom.yaml is picked up either)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("WARROOM_REDIS_PREFIX", prefix)
    for name in ("WARROOM_CONFIG", "WARROOM_PROTOCOL", "WARROOM_CLOCK_SCALE"):
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


@pytest.fixture
def store(redis_client: redis.Redis, prefix: str) -> Store:
    return Store(redis_client, Keys(prefix))


def _open(
    esc_id: str,
    customer: str,
    at: datetime,
    *,
    arr: int | None = None,
    criteria: tuple[str, ...] = (),
):
    declaration = Declaration(
        customer=customer, summary="down", declarer="U0DECL", arr=arr, criteria=criteria
    )
    return open_escalation(
        id=esc_id,
        channel_id=f"C-{esc_id}",
        declaration=declaration,
        ic="U0IVAN",
        vps=["U0VP"],
        protocol=PROTOCOL,
        now=at,
        clock_scale=1,
        ic_source="explicit",
        bot_user_id="UBOT",
    )


def _write_history(store: Store, now: datetime) -> None:
    """A: declared 3 days ago, assessed at 10 min, customer update at 40 min, resolved at 4 h.
    B: declared 90 minutes ago, still open, nothing done. Old: 40 days ago, outside --since 30d."""
    a_at = now - timedelta(days=3)
    esc, opening = _open("esc-a", "Acme Corp", a_at, arr=250_000)
    later = [event(a_at + timedelta(seconds=30), EventKind.WAR_ROOM_READY, "UBOT", "ready")]
    for change in (
        lambda e: mark_step_done(e, "assessment", "U0IVAN", a_at + timedelta(minutes=10), PROTOCOL),
        lambda e: record_customer_update(
            e, "U0VP", "We are on it", a_at + timedelta(minutes=40), PROTOCOL, 1
        ),
        lambda e: resolve(e, "U0IVAN", "fixed", a_at + timedelta(hours=4)),
    ):
        esc, events = change(esc)
        later += events
    store.create(esc, opening)
    store.append(esc.id, *later)

    b_at = now - timedelta(minutes=90)
    esc, opening = _open("esc-b", "Initech | EU", b_at, criteria=("security_incident",))
    store.create(esc, opening)
    store.append(esc.id, event(b_at + timedelta(seconds=2), EventKind.WAR_ROOM_READY, "UBOT"))

    old, opening = _open("esc-old", "Hooli", now - timedelta(days=40))
    store.create(old, opening)


def test_history_reads_the_period_with_timelines(store: Store) -> None:
    now = datetime.now(UTC)
    _write_history(store, now)
    history = store.history(now - timedelta(days=30))
    assert [esc.id for esc, _ in history] == ["esc-a", "esc-b"]
    a_events = history[0][1]
    assert [e.kind for e in a_events][:3] == [
        EventKind.DECLARED,
        EventKind.IC_ASSIGNED,
        EventKind.STEP_DONE,
    ]
    assert EventKind.CUSTOMER_UPDATE in {e.kind for e in a_events}
    assert store.history(now + timedelta(minutes=1)) == []


@pytest.mark.usefixtures("env")
def test_json_report_of_the_last_30_days(store: Store, capsys: pytest.CaptureFixture) -> None:
    _write_history(store, datetime.now(UTC))
    assert main(["--since", "30d", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    data = json.loads(out)

    assert data["escalations"] == {"total": 2, "open": 1, "resolved": 1}
    assert data["time_to_assessment"]["median_seconds"] == 600
    assert data["time_to_assessment"]["missing"] == 1
    assert data["time_to_war_room"]["median_seconds"] == 16  # 30 s and 2 s
    assert data["time_to_first_customer_communication"]["median_seconds"] == 2400
    assert data["time_to_resolve"]["mean_seconds"] == 4 * 3600
    # A: 2 h met by the customer update at 40 min, 2 h 40 missed before the resolution at
    # 4 h. B: open 90 minutes, its first update deadline (2 h) has not come yet.
    assert (data["update_cadence"]["met"], data["update_cadence"]["missed"]) == (1, 1)
    steps = {s["step"]: (s["met"], s["missed"]) for s in data["sla"]["steps"]}
    # B's assessment (15 min) and customer communication (1 h) are overdue.
    assert steps == {"assessment": (1, 1), "war_room": (2, 0), "customer_communication": (1, 1)}
    assert data["sla"]["overall"]["share"] == pytest.approx(4 / 6)
    assert {t["kpi"]: t["met"] for t in data["targets"]} == {
        "SLA compliance": False,
        "Average resolution time": True,
    }
    # A was resolved 68 h ago and nobody marked the follow-up done within 48 h.
    assert (data["follow_up"]["met"], data["follow_up"]["missed"]) == (0, 1)
    assert data["follow_up"]["pending"] == 0
    assert {r["label"]: r["count"] for r in data["by_customer"]} == {
        "Acme Corp": 1,
        "Initech | EU": 1,
    }
    assert {r["key"] for r in data["by_criterion"]} == {"arr_churn_risk", "security_incident"}
    assert [o["id"] for o in data["open_escalations"]] == ["esc-b"]
    assert data["open_escalations"][0]["overdue_steps"] == [
        "assessment",
        "customer_communication",
    ]
    assert sum(w["count"] for w in data["per_week"]) == 2
    assert len(data["per_week"]) >= 5  # every week of the 30 days, empty ones included


@pytest.mark.usefixtures("env")
def test_markdown_report_with_out_writes_the_report_and_charts(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _write_history(store, datetime.now(UTC))
    out_dir = tmp_path / "report"
    assert main(["--out", str(out_dir)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# Escalation KPIs")
    assert "| SLA compliance | > 98% | 66.7% | missed |" in out
    assert "Initech \\| EU" in out  # a pipe in a name does not break the table
    assert "esc-b" in out and "Hooli" not in out
    assert err.strip() == f"warroom report: wrote report.md and 3 charts to {out_dir}"

    assert {p.name for p in out_dir.iterdir()} == {"report.md", *CHARTS}
    report = (out_dir / "report.md").read_text(encoding="utf-8")
    assert report.startswith(out.rstrip("\n"))  # stdout's report, plus links to the charts
    for name in CHARTS:
        assert f"]({name})" in report
        assert (out_dir / name).read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.usefixtures("env")
def test_json_with_out(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write_history(store, datetime.now(UTC))
    assert main(["--format", "json", "--out", str(tmp_path / "o")]) == 0
    out, _ = capsys.readouterr()
    assert json.loads((tmp_path / "o" / "report.json").read_text()) == json.loads(out)
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"report.json", *CHARTS}


@pytest.mark.usefixtures("env")
def test_charts_without_matplotlib_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """matplotlib is the `charts` extra, not a dependency of every deployment."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["--out", str(tmp_path / "o")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and not (tmp_path / "o").exists()
    assert err.count("\n") == 1 and "pip install -c constraints.txt -e '.[charts]'" in err
    assert main(["--format", "json"]) == 0  # the report itself needs no charts


@pytest.mark.usefixtures("env")
def test_empty_history(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--since", "2w", "--out", str(tmp_path / "empty")]) == 0
    out, _ = capsys.readouterr()
    assert "No escalations were declared in this period." in out
    assert "| Time to assessment | n/a | n/a | n/a | 0 measured |" in out
    for name in CHARTS:
        assert (tmp_path / "empty" / name).read_bytes().startswith(PNG_SIGNATURE)

    assert main(["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["escalations"]["total"] == 0
    assert data["sla"]["overall"]["share"] is None
    assert data["time_to_resolve"]["median_seconds"] is None


@pytest.mark.usefixtures("env")
def test_redis_down_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", url)
    assert main(["--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"warroom report: cannot reach Redis at {url}")


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("since", ["3x", "0d", "d", "-1d", ""])
def test_bad_since_is_one_line_and_exit_2(since: str, capsys: pytest.CaptureFixture) -> None:
    assert main([f"--since={since}"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "12h, 30d or 2w" in err


@pytest.mark.usefixtures("env")
def test_a_broken_config_file_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "warroom.yaml"
    bad.write_text("aliens: [1]\n")
    monkeypatch.setenv("WARROOM_CONFIG", str(bad))
    assert main([]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "warroom.yaml" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_parse_since(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["30", "30m", "1.5d", "d30", "0w", "99999999999w"])
def test_parse_since_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="12h, 30d or 2w"):
        parse_since(text)
