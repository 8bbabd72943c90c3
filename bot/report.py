"""`warroom report`: the KPIs over the escalation history in Redis, and what the model cost
in a month and the month before, as Markdown or JSON, with PNG charts.

This module owns rendering `bot.domain.kpi.Kpis` as a report and as charts, adding up the
model usage the drafts logged (`Store.model_usage`) at the prices in `agents.pricing`, and the
command's arguments and exit codes. What each KPI means is `bot.domain.kpi`'s; the history
comes from `Store.history`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from agents import pricing
from bot.domain.kpi import RESOLUTION_TARGET, DurationStats, Kpis, Share, compute
from protocols.durations import human_duration
from protocols.schema import Milestone, Protocol

__all__ = [
    "MonthSpend",
    "Tally",
    "main",
    "month_spend",
    "parse_since",
    "render_json",
    "render_markdown",
    "spend_months",
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


# -- model spend ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Model calls added up: how many, their tokens of each kind, and what they cost at list
    prices. `unpriced`: calls of a model with no known price, which `cost` leaves out."""

    calls: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(pricing.USAGE_FIELDS, 0))
    cost: Decimal = Decimal(0)
    unpriced: int = 0

    def add(self, model: str, usage: Mapping[str, int]) -> None:
        self.calls += 1
        for name in pricing.USAGE_FIELDS:
            self.tokens[name] += usage.get(name, 0)
        cost = pricing.cost(model, usage)
        if cost is None:
            self.unpriced += 1
        else:
            self.cost += cost

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            **self.tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": float(self.cost),
            "unpriced_calls": self.unpriced,
        }


@dataclass
class MonthSpend:
    """One calendar month's model calls: in all, per kind of draft and per model."""

    month: str  # "2026-12"
    total: Tally
    by_kind: dict[str, Tally]
    by_model: dict[str, Tally]

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            **self.total.to_dict(),
            "by_kind": {k: t.to_dict() for k, t in self.by_kind.items()},
            "by_model": {m: t.to_dict() for m, t in self.by_model.items()},
        }


def month_spend(month: str, entries: Iterable[Mapping[str, Any]]) -> MonthSpend:
    """The month's spend from its logged model calls (`Store.model_usage`)."""
    spend = MonthSpend(month, Tally(), {}, {})
    for entry in entries:
        model, kind = str(entry.get("model") or "unknown"), str(entry.get("kind") or "unknown")
        usage = {name: int(entry.get(name) or 0) for name in pricing.USAGE_FIELDS}
        for tally in (
            spend.total,
            spend.by_kind.setdefault(kind, Tally()),
            spend.by_model.setdefault(model, Tally()),
        ):
            tally.add(model, usage)
    return spend


_MONTH_RE = re.compile(r"^\s*([0-9]{4})-([0-9]{2})\s*$")


def spend_months(month: str | None, now: datetime) -> tuple[str, str]:
    """`month` ("2026-03"; None: `now`'s month, UTC) and the month before it; ValueError
    saying what is accepted when `month` is not one."""
    if month is None:
        first = now.astimezone(UTC).replace(day=1)
    else:
        match = _MONTH_RE.match(month)
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
            raise ValueError(
                f"--month {month!r} is not a month: use its year and number, like 2026-03"
            )
        first = datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
    if first.year == 1 and first.month == 1:
        raise ValueError(f"--month {month!r} is too long ago: use a later month, like 2026-03")
    return first.strftime("%Y-%m"), (first - timedelta(days=1)).strftime("%Y-%m")


def _money(tally: Tally) -> str:
    if tally.calls and tally.unpriced == tally.calls:
        return "unknown (no known price)"
    # Cents hide what one draft costs (a few cents or less): small sums get four places.
    text = f"${tally.cost:,.2f}" if tally.cost >= 1 else f"${tally.cost:.4f}"
    if tally.unpriced:
        calls = "call" if tally.unpriced == 1 else "calls"
        text += f" (and {tally.unpriced} {calls} of a model with no known price)"
    return text


def _tally_cells(tally: Tally) -> list[str]:
    return [
        f"{tally.calls:,}",
        *(f"{tally.tokens[name]:,}" for name in pricing.USAGE_FIELDS),
        f"{tally.total_tokens:,}",
        _money(tally),
    ]


_TALLY_HEADERS = [
    "Calls",
    "Input tokens",
    "Cache writes",
    "Cache reads",
    "Output tokens",
    "Total tokens",
    "Cost",
]


def _spend_markdown(months: Sequence[MonthSpend]) -> list[str]:
    out = [
        "## Model spend",
        "",
        f"What the VP agent's model calls cost in {' and '.join(m.month for m in months)} "
        f"(calendar months, UTC), at Anthropic's list prices of "
        f"{pricing.PRICES_TAKEN.isoformat()} in US dollars ({pricing.PRICES_SOURCE}). Offline "
        "drafts cost nothing and are not counted.",
        "",
    ]
    out += _table(
        ["Month", *_TALLY_HEADERS],
        [[m.month, *_tally_cells(m.total)] for m in months],
        "none",
    )
    for title, label, group in (
        ("by kind of draft", "Kind", lambda m: m.by_kind),
        ("by model", "Model", lambda m: m.by_model),
    ):
        out += ["", f"## Model spend {title}", ""]
        out += _table(
            ["Month", label, *_TALLY_HEADERS],
            [
                [m.month, f"`{name}`", *_tally_cells(tally)]
                for m in months
                for name, tally in sorted(group(m).items())
            ],
            "no model calls",
        )
    return out


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
    kpis: Kpis,
    protocol: Protocol,
    since: datetime,
    now: datetime,
    *,
    charts: Sequence[str] = (),
    spend: Sequence[MonthSpend] = (),
) -> str:
    """The report as Markdown: headline KPIs against targets, SLA per step, counts, the
    open escalations and the model `spend` of each month given. `charts` (file names relative
    to the report) are linked at the end."""
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
                f"average < {_duration(RESOLUTION_TARGET)}",
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
                "Customer promises kept (the next letter by the time the last one promised)",
                _share(kpis.promises),
                "every one",
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
    if spend:
        out += ["", *_spend_markdown(spend)]
    if charts:
        out += ["", "## Charts", ""]
        out += [f"![{Path(c).stem}]({c})" for c in charts]
    return "\n".join(out) + "\n"


def render_json(kpis: Kpis, spend: Sequence[MonthSpend] = ()) -> str:
    data = kpis.to_dict()
    if spend:
        data["model_spend"] = {
            "currency": "USD",
            "prices_taken": pricing.PRICES_TAKEN.isoformat(),
            "prices_source": pricing.PRICES_SOURCE,
            "months": [m.to_dict() for m in spend],
        }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


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

    # SLA compliance per deadline step, against the protocol's 98% target.
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
    """`warroom report [--since 30d] [--format md|json] [--month 2026-03] [--out DIR]`; 0, or
    2 with one line on stderr when settings, the protocol or Redis stand in the way."""
    import redis

    from bot.boot import connect_redis, load_definitions, redis_problem, redis_ready
    from bot.config import ConfigError
    from bot.domain.errors import Unavailable
    from bot.settings import SettingsError, load_settings
    from bot.store import Keys, Store
    from protocols.loader import ProtocolError

    parser = argparse.ArgumentParser(
        prog="warroom report",
        description="The escalation KPIs over the history in Redis, and the model's spend "
        "this month and last.",
    )
    parser.add_argument(
        "--since", default="30d", help="how far back to look: 12h, 30d, 2w (default 30d)"
    )
    parser.add_argument("--format", choices=("md", "json"), default="md", help="default md")
    parser.add_argument(
        "--month",
        help="show the model spend of this month and the one before, like 2026-03 "
        "(default: the current month)",
    )
    parser.add_argument("--out", type=Path, help="also write the report and PNG charts here")
    args = parser.parse_args(argv)

    now = datetime.now(UTC)
    try:
        period = parse_since(args.since)
        months = spend_months(args.month, now)
    except ValueError as e:
        return _fail(str(e))
    if args.out is not None and importlib.util.find_spec("matplotlib") is None:
        return _fail(
            "--out draws its charts with matplotlib, which is not installed; install the "
            "charts extra at the tested versions: pip install -c constraints.txt -e '.[charts]'"
        )
    try:
        settings = load_settings()
    except SettingsError as e:
        return _fail(str(e))
    try:
        protocol = load_definitions(settings)[0]
    except (ConfigError, ProtocolError) as e:
        return _fail(str(e).replace("\n", "; "))

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
        store = Store(client, Keys(settings.redis_prefix))
        history = store.history(since)
        spend = [month_spend(m, store.model_usage(m)) for m in months]
    except (Unavailable, redis.ConnectionError, redis.TimeoutError) as e:
        return _fail(redis_problem(e, settings.redis_url))
    finally:
        client.close()

    kpis = compute(history, protocol, now, since=since)
    if args.format == "json":
        text = render_json(kpis, spend)
    else:
        text = render_markdown(kpis, protocol, since, now, spend=spend)
    sys.stdout.write(text)
    if args.out is not None:
        out_dir: Path = args.out
        try:
            charts = write_charts(kpis, out_dir)
            name = f"report.{args.format}"
            if args.format == "md":
                text = render_markdown(
                    kpis, protocol, since, now, charts=[p.name for p in charts], spend=spend
                )
            (out_dir / name).write_text(text, encoding="utf-8")
        except OSError as e:
            return _fail(f"cannot write to {out_dir}: {e.strerror or e}")
        # stderr, so stdout stays the report alone (it may be piped into jq).
        print(
            f"warroom report: wrote {name} and {len(charts)} charts to {out_dir}",
            file=sys.stderr,
        )
    return 0
