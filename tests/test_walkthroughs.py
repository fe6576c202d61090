"""The docs' curl walkthroughs (docs/walkthroughs/*.sh), run as a new user runs them: with `sh`, against the
server `make run` starts, twice on the same data. Each line marked `#=>` prints one answer, which must contain
every fragment the mark names (fragments are separated by ` … `), so the documented outputs cannot rot."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

WALKTHROUGHS = sorted((Path(__file__).resolve().parent.parent / "docs" / "walkthroughs").glob("*.sh"))
MARK = "  #=> "


def expected(script: Path) -> list[list[str]]:
    return [line.split(MARK, 1)[1].strip().split(" … ") for line in script.read_text().splitlines() if MARK in line]


def test_every_walkthrough_marks_what_it_prints():
    assert [script.name for script in WALKTHROUGHS] == ["seed-004.sh", "seeds-000-001.sh", "seeds-002-003.sh",
                                                        "v1.sh"]
    for script in WALKTHROUGHS:
        assert expected(script), script.name
        assert "date -d" not in script.read_text() and "sed -i" not in script.read_text()  # no GNU-only flags


@pytest.mark.slow
def test_each_walkthrough_runs_twice_on_the_same_make_run_and_prints_what_its_marks_say(make_run):
    base, token, _ = make_run
    for script in WALKTHROUGHS:
        for run in (1, 2):
            done = subprocess.run(["sh", str(script)], env={**os.environ, "TALLY": base, "TALLY_KEY": token},
                                  cwd=script.parent.parent.parent, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (script.name, run, done.stderr)
            printed = done.stdout.splitlines()
            marks = expected(script)
            assert len(printed) == len(marks), (script.name, run, printed)
            for line, fragments in zip(printed, marks, strict=True):
                assert all(fragment in line for fragment in fragments), (script.name, run, line, fragments)
