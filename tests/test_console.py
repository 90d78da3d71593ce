"""What a run prints: a bar on a terminal, plain lines when output goes to a file or pipe."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

from a2c.run import console
from a2c.run.console import Display

REPO = Path(__file__).resolve().parents[1]


def test_lines_mode_prints_at_evaluations_and_every_few_seconds(monkeypatch):
    out = io.StringIO()
    display = Display(1000, 0, "lines", stream=out)
    display.advance(100)
    assert out.getvalue() == ""  # nothing yet: no evaluation, not LINE_SECONDS old
    display.metrics(21.5, 1234.0)
    display.evaluated(30.0)
    assert out.getvalue() == "step 100/1,000 (10%), return 21.5, greedy eval 30.0, 1,234 steps/s\n"
    monkeypatch.setattr(console, "LINE_SECONDS", 0.0)
    display.advance(400)
    assert out.getvalue().splitlines()[-1].startswith("step 500/1,000 (50%)")
    display.close()


@pytest.mark.parametrize("progress,quiet,mode", [(True, True, "off"), (False, False, "off"), (True, False, "lines")])
def test_mode_choice_off_a_terminal(progress, quiet, mode):
    # Under pytest stderr is captured, i.e. not a terminal.
    assert Display.choose(progress, quiet) == mode


def test_training_piped_to_a_file_reports_progress_in_lines(tmp_path):
    run_dir = tmp_path / "piped"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "a2c",
            "train",
            "--env",
            "CartPole-v1",
            "--total-steps",
            "800",
            "--n-envs",
            "4",
            "--eval-every",
            "400",
            "--eval-episodes",
            "2",
            "--final-eval-episodes",
            "2",
            "--run-dir",
            str(run_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert [line.split(",")[0] for line in lines] == ["step 400/800 (50%)", "step 800/800 (100%)"]
    assert all("greedy eval" in line for line in lines)
    assert "\r" not in proc.stdout + proc.stderr  # no progress bar redraws in a log
