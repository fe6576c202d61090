"""`make bench`'s charts: PNG files beside docs/benchmarks/latest.md, drawn from the very tables the run records
(`bench/report.py`'s RECORDED, the tables latest.md holds), so a chart never says other than the figures.

- `read-latency.png`: seed 004's read latency at 1k and at 100k journal entries;
- `spend-vs-exhausted-lots.png`: a points spend with none and with 100k exhausted lots behind the open ones;
- `hot-accounts.png`: the hot-account table (bench/hot.py): calls/s, p99 and DynamoDB requests per posting of a
  hot account, one ordinary account, 100 accounts, the issuer under earns, and raw TransactWriteItems;
- `requests-per-operation.png`: every "requests per operation" table, each operation's requests against its
  target (red: over it).

Each is written on every run; a chart whose table the run did not record says so instead of keeping an older
picture. matplotlib draws on its Agg canvas (no display). Again from a figures file `make bench` wrote:

    python -m bench.charts [docs/benchmarks/latest.md]
"""
from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import report

WIDTH = 10.0  # inches, at DPI: 1,000 pixels
DPI = 100
BLUE, ORANGE, GREY, RED = "#3b6fb6", "#e08a2c", "#9aa3ad", "#c0392b"


def table_titled(sections: Sequence[report.Section], prefix: str) -> report.Table | None:
    """The first table whose title starts with `prefix`."""
    return next((section for section in sections
                 if isinstance(section, report.Table) and section.title.startswith(prefix)), None)


def number(cell: object) -> float | None:
    """A cell as a number: 1.63, "1.63", "<= 2", "1,000"; None for anything else ("-", a dict of statuses)."""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return float(cell)
    match = re.fullmatch(r"\s*(?:<=|>=|<|>)?\s*(-?[\d,]*\.?\d+)\s*x?\s*", str(cell))
    return float(match.group(1).replace(",", "")) if match else None


def column(table: report.Table, name: str) -> int:
    """The index of the first column whose header starts with `name`."""
    return next(index for index, header in enumerate(table.header) if str(header).startswith(name))


def _figure(height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, height), dpi=DPI)
    FigureCanvasAgg(figure)  # Agg: drawn in memory, no display
    return figure


def _wrap(title: str, width: int = 95) -> str:
    return "\n".join(textwrap.wrap(title, width))


def _versus(table: report.Table, series_names: Sequence[str], axis_label: str):
    """Grouped horizontal bars: one group a row, one bar per numeric column named; the ratio column as a note."""
    rows = [row for row in table.rows if all(number(row[column(table, name)]) is not None for name in series_names)]
    figure = _figure(1.6 + 0.75 * len(rows) * len(series_names) / 2)
    axes = figure.add_subplot()
    height = 0.8 / len(series_names)
    ratio = next((index for index, header in enumerate(table.header) if str(header).startswith("ratio")), None)
    for position, (name, colour) in enumerate(zip(series_names, (BLUE, ORANGE, GREY), strict=False)):
        values = [number(row[column(table, name)]) or 0.0 for row in rows]
        places = [index + (position - (len(series_names) - 1) / 2) * height for index in range(len(rows))]
        bars = axes.barh(places, values, height=height, color=colour, label=str(table.header[column(table, name)]))
        axes.bar_label(bars, labels=[f"{value:g}" for value in values], padding=3, fontsize=8)
    labels = [str(row[0]) + (f"\n{table.header[ratio]}: {row[ratio]}" if ratio is not None else "") for row in rows]
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(axis_label)
    axes.margins(x=0.12)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.set_title(_wrap(table.title), fontsize=10)
    return figure


def read_latency(sections: Sequence[report.Section]):
    table = table_titled(sections, "Seed 004: read latency")
    return table and _versus(table, ["1k", "100k"], "median latency of a read, ms")


def spend_vs_lots(sections: Sequence[report.Section]):
    table = table_titled(sections, "POST /spend latency")
    return table and _versus(table, ["none", "100k"], "median latency of a spend, ms")


def _kind_colour(label: str) -> str:
    if label.startswith("raw"):
        return GREY
    return ORANGE if "hot" in label or "issuer" in label else BLUE


def hot_accounts(sections: Sequence[report.Section]):
    table = table_titled(sections, "/v1 hot and ordinary accounts")
    if table is None:
        return None
    labels = [str(row[0]) for row in table.rows]
    colours = [_kind_colour(label) for label in labels]
    figure = _figure(1.4 + 0.45 * len(labels))
    panels = figure.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [1.4, 1, 1]})
    spread = column(table, "x 100") if any(str(h).startswith("x 100") for h in table.header) else None
    for axes, name, label in zip(panels, ("calls/s", "p99 ms", "DynamoDB requests/call"),
                                 ("postings/s (higher is better)", "p99 ms", "DynamoDB requests a posting"),
                                 strict=True):
        values = [number(row[column(table, name)]) or 0.0 for row in table.rows]
        bars = axes.barh(range(len(labels)), values, color=colours)
        notes = [f"{value:g}" + (f" ({row[spread]}x)" if spread is not None and name == "calls/s" else "")
                 for value, row in zip(values, table.rows, strict=True)]
        axes.bar_label(bars, labels=notes, padding=3, fontsize=8)
        axes.set_xlabel(label, fontsize=9)
        axes.margins(x=0.35)
    panels[0].set_yticks(range(len(labels)), ["\n".join(textwrap.wrap(label, 34)) for label in labels], fontsize=8)
    panels[0].invert_yaxis()
    figure.suptitle(_wrap(table.title + " (orange: hot, blue: ordinary; (Nx): of the 100-account rate)", 110),
                    fontsize=10)
    return figure


def request_tables(sections: Sequence[report.Section]) -> list[report.Table]:
    return [section for section in sections if isinstance(section, report.Table) and len(section.header) > 2
            and section.header[0] == "operation" and str(section.header[1]).startswith("requests")]


def requests_per_operation(sections: Sequence[report.Section]):
    from matplotlib.ticker import MaxNLocator

    tables = request_tables(sections)
    if not tables:
        return None
    sizes = [len(table.rows) for table in tables]
    figure = _figure(0.9 * len(tables) + 0.24 * sum(sizes))
    panels = figure.subplots(len(tables), 1, gridspec_kw={"height_ratios": sizes}, squeeze=False)[:, 0]
    for axes, table in zip(panels, tables, strict=True):
        requests = [number(row[1]) or 0.0 for row in table.rows]
        targets = [number(row[2]) for row in table.rows] if str(table.header[2]) == "target" else [None] * len(requests)
        colours = [RED if target is not None and value > target else BLUE
                   for value, target in zip(requests, targets, strict=True)]
        bars = axes.barh(range(len(requests)), requests, color=colours, height=0.7)
        axes.bar_label(bars, labels=[f"{value:g}" for value in requests], padding=3, fontsize=7)
        marked = [(index, target) for index, target in enumerate(targets) if target is not None]
        if marked:
            axes.scatter([target for _, target in marked], [index for index, _ in marked], marker="|", s=120,
                         color="black", zorder=3)
        axes.set_yticks(range(len(requests)), [str(row[0]).strip() for row in table.rows], fontsize=7)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.invert_yaxis()
        axes.margins(x=0.08)
        axes.set_title(_wrap(table.title, 120), fontsize=9, loc="left")
    panels[-1].set_xlabel("DynamoDB requests per operation (black tick: its target; red: over it)")
    return figure


def _missing(title: str):
    figure = _figure(1.6)
    figure.text(0.5, 0.6, title, ha="center", fontsize=11)
    figure.text(0.5, 0.35, "not in these figures: the next make bench draws it", ha="center", fontsize=9,
                color=GREY)
    return figure


CHARTS: dict[str, tuple[str, Callable]] = {
    "read-latency.png": ("Seed 004: read latency vs journal size", read_latency),
    "spend-vs-exhausted-lots.png": ("POST /spend latency vs exhausted lots", spend_vs_lots),
    "hot-accounts.png": ("/v1 hot and ordinary accounts", hot_accounts),
    "requests-per-operation.png": ("DynamoDB requests per operation", requests_per_operation),
}


def caption_of(markdown: str) -> str:
    """"make bench, <date>, commit <commit>, <machine>" from a figures file's header (bench/report.py)."""
    header = dict(re.findall(r"^- (date|commit|machine): (.+)$", markdown, flags=re.M))
    if not header:
        return "figures file without a make bench header"
    return (f"make bench, {header.get('date', '?')}, commit {header.get('commit', '?')}, "
            f"{header.get('machine', '?')}")


def write(sections: Sequence[report.Section], out_dir: Path, caption: str = "make bench") -> list[Path]:
    """Every chart, as PNG files in `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (title, draw) in CHARTS.items():
        figure = draw(sections) or _missing(title)
        figure.text(0.995, 0.004, caption, ha="right", va="bottom", fontsize=7, color=GREY)
        figure.tight_layout(rect=(0, 0.02, 1, 1))
        path = out_dir / name
        figure.savefig(path, format="png", metadata={"Software": None})  # no version stamp: no churn
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    figures = Path(arguments[0]) if arguments else report.output_path("TALLY_BENCH_OUT", report.BENCH_OUT)
    text = figures.read_text(encoding="utf-8")
    for path in write(report.parse(text), figures.parent, caption_of(text)):
        print(f"chart written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
