"""The benchmarks' figures as a Markdown file, beside what they print.

`bench.common.table` and `bench.common.note` print as before and also record each table and note here;
`make bench` (bench/run.py) then writes them to `docs/benchmarks/latest.md` and `make soak` (bench/soak.py) to
`docs/benchmarks/soak-latest.md`, each with the date, the commit and the machine in a header, so the figures
in the docs are the last run's, never pasted by hand. `TALLY_BENCH_OUT` and `TALLY_SOAK_OUT` name other paths.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_OUT = PROJECT_ROOT / "docs" / "benchmarks" / "latest.md"
SOAK_OUT = PROJECT_ROOT / "docs" / "benchmarks" / "soak-latest.md"


@dataclass(frozen=True)
class Table:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[object]]


@dataclass(frozen=True)
class Note:
    text: str


Section = Table | Note

RECORDED: list[Section] = []  # every table and note printed by this process, in order


def record(section: Section) -> None:
    RECORDED.append(section)


def _cell(value: object) -> str:
    """One Markdown table cell: pipes escaped, no line breaks."""
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def markdown(sections: Sequence[Section], *, title: str, command: str, date: str, commit: str | None,
             machine: str) -> str:
    """The sections as a Markdown page: a header naming when, at which commit and on what it ran, then each
    table (a title line and a pipe table) and each note in the order they were printed."""
    lines = [
        f"# {title}",
        "",
        f"Written by `{command}`; do not edit by hand (the next run rewrites this file).",
        "",
        f"- date: {date}",
        f"- commit: {commit or 'unknown (not a git checkout)'}",
        f"- machine: {machine}",
    ]
    for section in sections:
        if isinstance(section, Note):
            lines += ["", _cell(section.text)]
            continue
        lines += ["", f"### {_cell(section.title)}", "",
                  "| " + " | ".join(_cell(cell) for cell in section.header) + " |",
                  "|" + "|".join("---" for _ in section.header) + "|"]
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in section.rows]
    return "\n".join(lines) + "\n"


def _cells(line: str) -> list[str]:
    """The cells of one Markdown table row, unescaped (the inverse of `_cell`)."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def parse(text: str) -> list[Section]:
    """The tables and notes of a page `markdown` wrote, in order (cells as text): what `python -m bench.charts`
    draws again without running the benchmarks."""
    sections: list[Section] = []
    lines = text.splitlines()
    # After the header `markdown` writes (its last line names the machine).
    index = next((number + 1 for number, line in enumerate(lines) if line.startswith("- machine: ")), 0)
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("### "):
            title = line[4:].strip().replace("\\|", "|")
            while index < len(lines) and not lines[index].startswith("|"):
                index += 1
            rows = []
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(_cells(lines[index]))
                index += 1
            if rows:
                sections.append(Table(title, rows[0], rows[2:]))  # rows[1]: the |---| line
        elif line.strip():
            sections.append(Note(line.strip()))
    return sections


def git_commit(cwd: Path = PROJECT_ROOT) -> str | None:
    """`git rev-parse --short HEAD`, with `-dirty` when the work tree has changes; None without git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        # Changes to the figures files themselves (an earlier run's) do not make the code dirty.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)docs/benchmarks"], cwd=cwd, capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit or None


def machine() -> str:
    """The machine line of the header: cores first (the figures depend on them most)."""
    return (f"{os.cpu_count() or '?'} cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}")


def output_path(variable: str, default: Path, environ: Mapping[str, str] = os.environ) -> Path:
    raw = environ.get(variable)
    return Path(raw) if raw else default


def write(path: Path, sections: Sequence[Section], *, title: str, command: str, now: datetime | None = None,
          commit: str | None = None, machine_line: str | None = None) -> Path:
    """Write the sections to `path` (its folder made if missing); returns the path."""
    text = markdown(sections, title=title, command=command,
                    date=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
                    commit=commit if commit is not None else git_commit(), machine=machine_line or machine())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
