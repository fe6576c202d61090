"""`make bench`'s charts (bench/charts.py) from a small fake set of recorded tables; pure, no DynamoDB."""
from __future__ import annotations

from datetime import UTC, datetime

from bench import charts, report

REQUESTS = ["operation", "requests", "target", "read units", "write units", "calls"]
CONTENDED = ["calls/s", "p50 ms", "p99 ms", "DynamoDB requests/call", "statuses"]
TABLES = [
    report.Table("Seed 004: DynamoDB requests per API operation (uncontended)", REQUESTS,
                 [["POST /amount", 2, "<= 2", "6", "14", "TransactGetItems, TransactWriteItems"],
                  ["GET /balance/{id}", 1, "<= 1", "1", "0", "GetItem"]]),
    report.Table("Seed 004: read latency (median of 200, ms) vs journal size",
                 ["operation", "1k entries", "100k entries", "ratio (target <= 1.2)"],
                 [["GET /balance/{id}", "1.63", "1.55", "0.95"],
                  ["GET /max_transaction_volume", "2.72", "2.84", "1.04"]]),
    report.Note("(history written in 0s and 34s; 10 and 1,000 accounts)"),
    report.Table("Seeds 000/001: DynamoDB requests and capacity units per operation (uncontended)", REQUESTS,
                 [["POST /add, negative (1 lot)", 4, "<= 3", "3.5", "16", "GetItem, Query"]]),
    report.Table("POST /spend latency (median of 200, ms) vs exhausted lots behind 300 open ones",
                 ["exhausted lots", "none", "100k", "ratio (target <= 1.2)"],
                 [["POST /spend, 1 lot", "9.99", "8.17", "0.82"]]),
    report.Table("Points: DynamoDB requests and capacity units per operation vs distinct payers (256 characters each)",
                 REQUESTS, [["add, a new payer, 10 payers", 2, "-", "2", "14", "TransactGetItems"]]),
    report.Table("/v1: DynamoDB requests and capacity units per operation (uncontended; capacity units and calls "
                 "include the uncached key read)",
                 ["operation", "requests (key cached)", "target", "uncached key", "read units", "write units", "calls"],
                 [["POST /v1/postings", 2, "<= 2", 3, "4", "10", "GetItem, TransactGetItems, TransactWriteItems"]]),
    report.Table("/v1 hot and ordinary accounts, POST /v1/postings from 16 threads, 400 postings a row",
                 ["case", *CONTENDED, "x 100 accounts"],
                 [["one hot account (32 shards), credits", "48.0", "300.1", "1200.5", "2.60", {201: 400}, "0.91"],
                  ["one ordinary account, credits", "20.1", "700.0", "3000.2", "9.10", {201: 400}, "0.38"],
                  ["100 ordinary accounts, credits", "52.7", "280.3", "900.9", "2.10", {201: 400}, "1.00"],
                  ["raw TransactWriteItems, one item (no Tally)", "400.2", "30.0", "90.0", "0.00", {200: 400},
                   "7.59"]]),
    report.Table("Cold import (median of 7 runs, ms, including interpreter start)", ["command", "ms"],
                 [["import app", "177"]]),
]
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG), path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_every_chart_is_drawn_from_the_recorded_tables(tmp_path):
    written = charts.write(TABLES, tmp_path / "out", caption="make bench, 2026-11-26 09:30 UTC, commit 0123abc")
    assert [path.name for path in written] == list(charts.CHARTS) == [
        "read-latency.png", "spend-vs-exhausted-lots.png", "hot-accounts.png", "requests-per-operation.png"]
    for path in written:
        width, height = png_size(path)
        assert width == charts.WIDTH * charts.DPI and 100 < height < 3000, (path.name, width, height)
        assert b"matplotlib" not in path.read_bytes()  # no version stamp: the same figures draw the same file
    # Every requests table is a panel of its own: the taller chart.
    assert png_size(tmp_path / "out" / "requests-per-operation.png")[1] > png_size(written[1])[1]


def test_the_charts_find_their_tables_by_title_and_read_numbers_from_cells():
    assert charts.table_titled(TABLES, "/v1 hot and ordinary accounts") is TABLES[7]
    assert [table.title[:8] for table in charts.request_tables(TABLES)] == ["Seed 004", "Seeds 00", "Points: ",
                                                                            "/v1: Dyn"]
    assert [charts.number(cell) for cell in ("1.63", 2, "<= 2", "1,000", "-", {201: 400}, "0.91", True)] == [
        1.63, 2.0, 2.0, 1000.0, None, None, 0.91, None]


def test_a_chart_whose_table_was_not_recorded_says_so_rather_than_keeping_an_old_picture(tmp_path):
    (tmp_path / "hot-accounts.png").write_bytes(b"an older run's chart")
    written = charts.write([TABLES[1]], tmp_path)  # only the read latency table
    assert len(written) == 4 and all(path.read_bytes().startswith(PNG) for path in written)
    assert png_size(tmp_path / "hot-accounts.png")[1] == 1.6 * charts.DPI  # the short "not in these figures" card


def test_the_charts_can_be_drawn_again_from_the_figures_file(tmp_path):
    figures = report.write(tmp_path / "latest.md", TABLES, title="make bench: last run", command="make bench",
                           now=datetime(2026, 11, 26, 9, 30, tzinfo=UTC), commit="0123abc",
                           machine_line="2 cores, Linux x86_64, Python 3.11.7")
    text = figures.read_text()
    assert report.parse(text) == [
        report.Table(section.title, [str(cell) for cell in section.header],
                     [[str(cell) for cell in row] for row in section.rows])
        if isinstance(section, report.Table) else section for section in TABLES]
    assert charts.caption_of(text) == "make bench, 2026-11-26 09:30 UTC, commit 0123abc, 2 cores, Linux x86_64, " \
                                      "Python 3.11.7"
    assert charts.main([str(figures)]) == 0
    assert sorted(path.name for path in tmp_path.glob("*.png")) == sorted(charts.CHARTS)
