"""`make bench` and `make soak` write their figures as Markdown (bench/report.py); pure, no DynamoDB."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench import common, report

SAMPLE = [
    report.Table("Seed 004: DynamoDB requests per API operation (uncontended)",
                 ["operation", "requests", "target", "read units", "write units", "calls"],
                 [["POST /amount", 2, "<= 2", "6", "14", "TransactGetItems, TransactWriteItems"],
                  ["GET /balance/{id}", 1, "<= 1", "1", "0", "GetItem"]]),
    report.Note("(history written in 0s and 34s; 10 and 1,000 accounts)"),
    report.Table("Soak", ["operation", "statuses"], [["POST /wallet/credit|debit", {200: 317, 400: 10}]]),
]


def test_the_markdown_file_has_a_header_and_every_table_and_note_in_order(tmp_path):
    path = report.write(tmp_path / "nested" / "latest.md", SAMPLE, title="make bench: last run",
                        command="make bench", now=datetime(2026, 11, 25, 21, 40, tzinfo=UTC), commit="0684adb",
                        machine_line="2 cores, Linux x86_64, Python 3.11.9")
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "# make bench: last run"
    assert "- date: 2026-11-25 21:40 UTC" in lines
    assert "- commit: 0684adb" in lines
    assert "- machine: 2 cores, Linux x86_64, Python 3.11.9" in lines
    assert "Written by `make bench`" in text
    first = lines.index("### Seed 004: DynamoDB requests per API operation (uncontended)")
    assert lines[first + 2:first + 6] == [
        "| operation | requests | target | read units | write units | calls |",
        "|---|---|---|---|---|---|",
        "| POST /amount | 2 | <= 2 | 6 | 14 | TransactGetItems, TransactWriteItems |",
        "| GET /balance/{id} | 1 | <= 1 | 1 | 0 | GetItem |",
    ]
    assert text.index("(history written in 0s") > first
    assert "| POST /wallet/credit\\|debit | {200: 317, 400: 10} |" in lines  # a pipe in a cell stays one cell
    assert text.endswith("\n")


def test_every_row_of_a_table_has_as_many_cells_as_its_header(tmp_path):
    text = report.markdown(SAMPLE, title="t", command="make bench", date="d", commit=None, machine="m")
    assert "- commit: unknown (not a git checkout)" in text
    for line in text.splitlines():
        if line.startswith("|"):
            cells = line.replace("\\|", "").strip("|").split("|")
            assert len(cells) in (6, 2), line


def test_the_path_is_docs_benchmarks_unless_the_environment_names_another(tmp_path):
    assert report.output_path("TALLY_BENCH_OUT", report.BENCH_OUT, {}) == report.BENCH_OUT
    assert report.BENCH_OUT == Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "latest.md"
    assert report.output_path("TALLY_BENCH_OUT", report.BENCH_OUT, {"TALLY_BENCH_OUT": str(tmp_path / "x.md")}) \
        == tmp_path / "x.md"


def test_what_the_benchmarks_print_is_recorded_too(capsys, monkeypatch):
    monkeypatch.setattr(report, "RECORDED", [])
    common.table("Title", ["a", "b"], [[1, 2]])
    common.note("(a note)")
    printed = capsys.readouterr().out
    assert "Title" in printed and "(a note)" in printed  # the printed tables are kept
    assert report.RECORDED == [report.Table("Title", ["a", "b"], [[1, 2]]), report.Note("(a note)")]


def test_the_header_names_the_commit_and_the_cores():
    assert report.git_commit() is None or report.git_commit().split("-")[0].isalnum()
    assert report.machine().split(" ")[0].isdigit() and " cores" in report.machine()
