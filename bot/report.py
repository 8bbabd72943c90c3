"""`warroom report`: the KPIs over the escalation history in Redis, as Markdown or JSON, with
PNG charts.

This module owns rendering `bot.domain.kpi.Kpis` as a report and as charts, and the command's
arguments and exit codes. What each KPI means is `bot.domain.kpi`'s; the history comes from
`Store.history`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain.kpi import RESOLUTION_TARGET, DurationStats, Kpis, Share, compute
from protocols.durations import human_duration
from protocols.schema import Milestone, Protocol

__all__ = [
    "main",
    "parse_since",
    "render_json",
    "render_markdown",
    "write_charts",
]

_SINCE_RE = re.compile(r"^\s*([0-9]+)\s*([hdw])\s*$", re.IGNORECASE)
_SINCE_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> timedelta:
    """A period such as "12h", "30d" or "2w"; ValueError saying what is accepted otherwise."""
    match = _SINCE_RE.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"--since {text!r} is not a period: use a whole number of hours, days or weeks "
            "greater than zero, like 12h, 30d or 2w"
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    try:
        return timedelta(**{_SINCE_UNITS[unit]: amount})
    except OverflowError:
        raise ValueError(
            f"--since {text!r} is too long ago: use a shorter period, like 12h, 30d or 2w"
        ) from None


# -- rendering ------------------------------------------------------------------------------


def _duration(value: timedelta | float | None) -> str:
    return "n/a" if value is None else human_duration(value)


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def _share(result: Share) -> str:
    if not result.due:
        return "n/a (nothing due)"
    return f"{_percent(result.share)} ({result.met} of {result.due})"


def _cell(text: object) -> str:
    # Customer names and ids are typed by people: keep them from breaking the table.
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> list[str]:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    if not rows:
        # A table with zero rows renders as a bare header; say why it is empty instead.
        lines.append("| " + " | ".join([_cell(empty)] + ["" for _ in headers[1:]]) + " |")
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _time_row(name: str, stats: DurationStats, target: str, missing_label: str) -> list[str]:
    detail = f"{stats.count} measured"
    if stats.missing:
        detail += f", {stats.missing} {missing_label}"
    return [
        name,
        _duration(stats.median),
        _duration(stats.p90),
        _duration(stats.mean),
        detail,
        target,
    ]


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "missed", None: "n/a"}[met]


def render_markdown(
    kpis: Kpis, protocol: Protocol, since: datetime, now: datetime, *, charts: Sequence[str] = ()
) -> str:
    """The report as Markdown: headline KPIs against targets, SLA per step, counts and the
    open escalations. `charts` (file names relative to the report) are linked at the end."""
    out = [
        "# Escalation KPIs",
        "",
        f"Escalations declared from {_when(since)} to {_when(now)}: "
        f"**{kpis.total}** ({kpis.open} open, {kpis.resolved} resolved).",
        "",
    ]
    if not kpis.total:
        out += ["No escalations were declared in this period.", ""]

    deadline = {s.step: _duration(s.deadline) for s in kpis.sla_by_step}

    def within(milestone: Milestone) -> str:
        step = protocol.milestone_id(milestone)
        return f"within {deadline[step]} (protocol)" if step in deadline else "n/a"

    out += ["## Source targets", ""]
    out += _table(
        ["KPI", "Target", "Actual", "Verdict"],
        [
            [
                t.kpi,
                t.target,
                _percent(t.actual) if t.unit == "share" else _duration(t.actual),
                _verdict(t.met),
            ]
            for t in kpis.targets
        ],
        "n/a",
    )
    out += ["", "## Response times", ""]
    out += _table(
        ["KPI", "Median", "p90", "Mean", "Escalations", "Target"],
        [
            _time_row(
                "Time to assessment", kpis.time_to_assessment, within("assessment"), "not yet"
            ),
            _time_row("Time to war room", kpis.time_to_war_room, within("war_room"), "not yet"),
            _time_row(
                "Time to first customer communication",
                kpis.time_to_first_customer_communication,
                within("first_customer_contact"),
                "not yet",
            ),
            _time_row(
                "Time to resolve",
                kpis.time_to_resolve,
                f"average < {_duration(RESOLUTION_TARGET)} (source)",
                "open",
            ),
        ],
        "n/a",
    )
    interval = _duration(kpis.update_interval) if kpis.update_interval else None
    window = _duration(kpis.follow_up_window) if kpis.follow_up_window else None
    out += ["", "## Cadence and follow-up", ""]
    out += _table(
        ["KPI", "Actual", "Target"],
        [
            [
                "Status-update cadence adherence (deadlines met)",
                _share(kpis.update_cadence),
                f"an update every {interval}" if interval else "n/a",
            ],
            [
                "Follow-up done after resolution"
                + (
                    f" ({kpis.follow_up_pending} still in their window)"
                    if kpis.follow_up_pending
                    else ""
                ),
                _share(kpis.follow_up),
                f"within {window} of resolution" if window else "n/a",
            ],
        ],
        "n/a",
    )
    out += ["", "## SLA compliance per protocol step", ""]
    out += _table(
        ["Step", "Deadline", "Met", "Missed", "Compliance"],
        [
            [
                f"{s.title} (`{s.step}`)",
                _duration(s.deadline),
                s.result.met,
                s.result.missed,
                _percent(s.result.share),
            ]
            for s in kpis.sla_by_step
        ]
        + [
            [
                "**Overall**",
                "",
                kpis.sla_overall.met,
                kpis.sla_overall.missed,
                _percent(kpis.sla_overall.share),
            ]
        ],
        "n/a",
    )
    out += ["", "## Escalations by criterion", ""]
    out += _table(
        ["Criterion", "Escalations"],
        [[f"{r.label} (`{r.key}`)", r.count] for r in kpis.by_criterion],
        "none",
    )
    out += ["", "## Escalations by customer", ""]
    out += _table(
        ["Customer", "Escalations"], [[r.label, r.count] for r in kpis.by_customer], "none"
    )
    out += ["", "## Escalations by incident commander", ""]
    out += _table(
        ["Incident commander", "Escalations"], [[r.label, r.count] for r in kpis.by_ic], "none"
    )
    out += ["", "## Escalations per week", ""]
    out += _table(["ISO week", "Declared"], [list(w) for w in kpis.per_week], "none")
    out += ["", "## Open escalations", ""]
    out += _table(
        ["Escalation", "Customer", "IC", "Open for", "Next deadline", "Overdue"],
        [
            [
                o.id,
                o.customer,
                o.ic,
                _duration(o.age),
                f"{o.next_step} at {_when(o.next_due_at)}" if o.next_due_at else "none",
                ", ".join(o.overdue_steps) or "none",
            ]
            for o in kpis.open_escalations
        ],
        "none",
    )
    if charts:
        out += ["", "## Charts", ""]
        out += [f"![{Path(c).stem}]({c})" for c in charts]
    return "\n".join(out) + "\n"


def render_json(kpis: Kpis) -> str:
    return json.dumps(kpis.to_dict(), indent=2, ensure_ascii=False) + "\n"


# -- charts ---------------------------------------------------------------------------------


def write_charts(kpis: Kpis, out_dir: Path) -> list[Path]:
    """SLA compliance per step, time-to-resolve distribution and escalations per week, as PNG
    files in `out_dir`; each says "no data" when there is nothing to plot."""
    # The Agg canvas, attached to each figure: no pyplot, so no global backend is switched
    # and nothing is shared between threads (the App Home may render charts too).
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(fig: Figure, name: str) -> None:
        FigureCanvasAgg(fig)
        path = out_dir / name
        fig.savefig(path, format="png", dpi=100)
        paths.append(path)

    def no_data(ax: Axes, message: str) -> None:
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])

    # SLA compliance per deadline step, against the source's 98% target.
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("SLA compliance per protocol step")
    scored = [s for s in kpis.sla_by_step if s.result.due]
    if scored:
        shares = [100 * (s.result.share or 0) for s in scored]
        bars = ax.bar([s.step for s in scored], shares, color="#3b7dd8")
        ax.bar_label(
            bars,
            labels=[f"{v:.0f}% of {s.result.due}" for v, s in zip(shares, scored, strict=True)],
        )
        ax.axhline(98, color="#c0392b", linestyle="--", label="target 98%")
        ax.set_ylim(0, 110)
        ax.set_ylabel("deadlines met (%)")
        ax.legend(loc="lower right")
    else:
        no_data(ax, "no data: no deadline has fallen due")
    save(fig, "sla_compliance.png")

    # How long escalations took to resolve, with the 24 h target.
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Time to resolve")
    hours = [
        e.time_to_resolve.total_seconds() / 3600
        for e in kpis.escalations
        if e.time_to_resolve is not None
    ]
    if hours:
        ax.hist(hours, bins=min(20, max(5, len(hours))), color="#3b7dd8", edgecolor="white")
        ax.axvline(24, color="#c0392b", linestyle="--", label="target: average < 24h")
        ax.set_xlabel("hours from declaration to resolution")
        ax.set_ylabel("escalations")
        ax.legend(loc="upper right")
    else:
        no_data(ax, "no data: nothing resolved")
    save(fig, "time_to_resolve.png")

    # Declarations per ISO week.
    fig = Figure(figsize=(max(7, 0.4 * len(kpis.per_week)), 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Escalations per week")
    if kpis.per_week and any(count for _, count in kpis.per_week):
        weeks = [w for w, _ in kpis.per_week]
        ax.bar(weeks, [c for _, c in kpis.per_week], color="#3b7dd8")
        ax.set_ylabel("declared")
        ax.tick_params(axis="x", labelrotation=45)
        ax.yaxis.get_major_locator().set_params(integer=True)
    else:
        no_data(ax, "no data: no escalations declared")
    save(fig, "escalations_per_week.png")
    return paths


# -- the command ----------------------------------------------------------------------------


def _fail(message: str) -> int:
    print(f"warroom report: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """`warroom report [--since 30d] [--format md|json] [--out DIR]`; 0, or 2 with one line
    on stderr when settings, the protocol or Redis stand in the way."""
    import redis

    from bot.boot import connect_redis, load_definitions, redis_problem, redis_ready
    from bot.config import ConfigError
    from bot.domain.errors import Unavailable
    from bot.settings import SettingsError, load_settings
    from bot.store import Keys, Store
    from protocols.loader import ProtocolError

    parser = argparse.ArgumentParser(
        prog="warroom report",
        description="The escalation KPIs over the history in Redis.",
    )
    parser.add_argument(
        "--since", default="30d", help="how far back to look: 12h, 30d, 2w (default 30d)"
    )
    parser.add_argument("--format", choices=("md", "json"), default="md", help="default md")
    parser.add_argument("--out", type=Path, help="also write the report and PNG charts here")
    args = parser.parse_args(argv)

    try:
        period = parse_since(args.since)
    except ValueError as e:
        return _fail(str(e))
    if args.out is not None and importlib.util.find_spec("matplotlib") is None:
        return _fail(
            "--out draws its charts with matplotlib, which is not installed; install the "
            "charts extra: pip install 'warroom[charts]'"
        )
    try:
        settings = load_settings()
    except SettingsError as e:
        return _fail(str(e))
    try:
        protocol = load_definitions(settings)[0]
    except (ConfigError, ProtocolError) as e:
        return _fail(str(e).replace("\n", "; "))

    now = datetime.now(UTC)
    try:
        since = now - period
    except OverflowError:
        return _fail(f"--since {args.since!r} is too long ago: use a shorter period, like 30d")
    try:
        client = connect_redis(settings)
    except ValueError as e:  # a REDIS_URL redis-py cannot parse
        return _fail(str(e))
    problem = redis_ready(client, settings.redis_url)
    if problem:
        client.close()
        return _fail(problem)
    try:
        history = Store(client, Keys(settings.redis_prefix)).history(since)
    except (Unavailable, redis.ConnectionError, redis.TimeoutError) as e:
        return _fail(redis_problem(e, settings.redis_url))
    finally:
        client.close()

    kpis = compute(history, protocol, now, since=since)
    if args.format == "json":
        text = render_json(kpis)
    else:
        text = render_markdown(kpis, protocol, since, now)
    sys.stdout.write(text)
    if args.out is not None:
        out_dir: Path = args.out
        try:
            charts = write_charts(kpis, out_dir)
            name = f"report.{args.format}"
            if args.format == "md":
                text = render_markdown(kpis, protocol, since, now, charts=[p.name for p in charts])
            (out_dir / name).write_text(text, encoding="utf-8")
        except OSError as e:
            return _fail(f"cannot write to {out_dir}: {e.strerror or e}")
        # stderr, so stdout stays the report alone (it may be piped into jq).
        print(
            f"warroom report: wrote {name} and {len(charts)} charts to {out_dir}",
            file=sys.stderr,
        )
    return 0
