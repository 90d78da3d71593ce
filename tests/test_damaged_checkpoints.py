"""Damaged checkpoints and full disks (issue 31): ``--resume`` skips a truncated or garbled newest
checkpoint (moved aside, said in one line with the updates trained again) and still ends exactly as an
uninterrupted run; with no intact checkpoint it stops in one line, exit 2, changing nothing; a full disk
while checkpointing or writing the model files leaves the previous ones intact."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from a2c.cli.main import main
from a2c.config.resolve import make_config
from a2c.run.checkpoint import CHECKPOINT_DIR, DAMAGED_DIR, INDEX_FILE, RunCheckpoint, checkpoint_problem
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train

REPO = Path(__file__).resolve().parents[1]
CLOCK = {"time/steps_per_second", "time/elapsed_seconds"}


def config(run_dir: Path):
    """30 updates of 4 x 5 steps; checkpoints every 6 updates, the newest 3 kept."""
    return make_config(
        {
            "total_steps": 600,
            "n_envs": 4,
            "n_steps": 5,
            "eval_every": 200,
            "eval_episodes": 2,
            "final_eval_episodes": 2,
            "log_every": 5,
            "checkpoint_every": 6,
            "keep_checkpoints": 3,
            "progress": False,
            "run_dir": str(run_dir),
        }
    )


def stop_at(update: int):
    def callback(u: int, step: int) -> None:
        if u == update:
            raise KeyboardInterrupt

    return callback


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in CLOCK} for row in csv.DictReader(f)]


def stopped_run(tmp_path: Path, name: str = "run") -> Path:
    """A run stopped at update 20: checkpoints 12, 18 and 20 on disk."""
    cfg = config(tmp_path / name)
    with pytest.raises(TrainingInterrupted):
        train(cfg, quiet=True, callback=stop_at(20))
    run_dir = Path(cfg.run_dir)
    assert sorted(p.name for p in (run_dir / CHECKPOINT_DIR).glob("*.index")) == [
        "ckpt-12.index",
        "ckpt-18.index",
        "ckpt-20.index",
    ]
    return run_dir


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    result = train(config(tmp_path_factory.mktemp("ref") / "run"), quiet=True)
    return result.run_dir, result.model.get_weights()


def cut_data(ckpt: Path) -> None:
    data = next(ckpt.parent.glob(ckpt.name + ".data-*"))
    os.truncate(data, data.stat().st_size // 2)


def garble_data(ckpt: Path) -> None:
    data = next(ckpt.parent.glob(ckpt.name + ".data-*"))
    raw = bytearray(data.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(255 - b for b in raw[middle : middle + 64])
    data.write_bytes(bytes(raw))


def garble_index(ckpt: Path) -> None:
    index = ckpt.parent / (ckpt.name + ".index")
    raw = bytearray(index.read_bytes())
    raw[-48:] = b"\0" * 48  # the table's footer
    index.write_bytes(bytes(raw))


def unreadable_manager_index(ckpt: Path) -> None:
    (ckpt.parent / INDEX_FILE).write_bytes(b'model_checkpoint_path: "ckpt-2\0\0\xff garbage')


@pytest.mark.parametrize(
    "damage, resumed_from, says",
    [
        (cut_data, 18, "a file is cut short"),
        (garble_data, 18, "does not match its checksums"),
        (garble_index, 18, "ckpt-20 is damaged"),
        (unreadable_manager_index, 20, "the checkpoint index was rebuilt from the checkpoints on disk"),
    ],
    ids=["data cut", "data garbled", "index garbled", "manager index unreadable"],
)
def test_resume_skips_a_damaged_newest_checkpoint_and_ends_exactly(
    tmp_path, capsys, reference, damage, resumed_from, says
):
    ref_dir, ref_weights = reference
    run_dir = stopped_run(tmp_path)
    checkpoints = run_dir / CHECKPOINT_DIR
    damage(checkpoints / "ckpt-20")
    damaged_files = {p.name: p.read_bytes() for p in checkpoints.glob("ckpt-20.*")}

    result = resume(run_dir, quiet=True)

    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("a2c train: warning: "), err
    assert says in err and f"resuming from ckpt-{resumed_from} (update {resumed_from}, step {resumed_from * 20})" in err
    if resumed_from == 18:
        assert "updates 19-20 (steps 360-400) are trained again" in err
        moved = checkpoints / DAMAGED_DIR / "ckpt-20"
        assert f"its files were moved to {moved}" in err
        assert {name: (moved / name).read_bytes() for name in damaged_files} == damaged_files  # kept as found
        assert says.split(" (")[0] in (moved / "DAMAGED.txt").read_text() or "damaged" in says
    else:
        assert list((checkpoints / DAMAGED_DIR).glob(INDEX_FILE + ".*"))  # the unreadable index, kept
    assert result.summary["total_steps"] == 600 and result.summary["resumed_at_updates"] == [resumed_from]
    for a, b in zip(ref_weights, result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert rows(ref_dir / "metrics.csv") == rows(run_dir / "metrics.csv")
    assert rows(ref_dir / "evaluations.csv") == rows(run_dir / "evaluations.csv")
    assert RunCheckpoint.latest_update(run_dir) == 30 and checkpoint_problem(str(checkpoints / "ckpt-30")) is None


def test_no_intact_checkpoint_is_one_line_exit_2_and_changes_nothing(tmp_path, capsys):
    run_dir = stopped_run(tmp_path)
    for update in (12, 18, 20):
        cut_data(run_dir / CHECKPOINT_DIR / f"ckpt-{update}")
    before = snapshot(run_dir)
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("a2c train: error: no intact checkpoint in") and "nothing was deleted" in err
    assert "ckpt-20: a file is cut short" in err and "ckpt-12: a file is cut short" in err
    assert snapshot(run_dir) == before


FULL_DISK = r"""
import hashlib, json, resource, sys
from pathlib import Path
from a2c.agent.model import build_actor_critic
from a2c.artifacts.export import export_saved_model
from a2c.artifacts.saving import save_model
from a2c.common.errors import WriteError
from a2c.config.resolve import make_config
from a2c.run.checkpoint import RunCheckpoint, checkpoint_problem
from a2c.run.driver import RunDriver
from a2c.run.train import resume, train

LIMIT = 16_000  # bytes per file: the logs fit, a checkpoint's data (~45 kB) and a model do not


def limit(on):
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT if on else resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def digest(run):
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and "checkpoints" not in p.parts}


run = Path(sys.argv[1])
out = {}
cfg = make_config({"total_steps": 600, "n_envs": 4, "n_steps": 5, "eval_every": 0, "final_eval_episodes": 0,
                   "checkpoint_every": 6, "keep_checkpoints": 3, "progress": False, "run_dir": str(run)})
try:  # the disk fills after the checkpoint at update 6: the one at 12 cannot be written
    train(cfg, quiet=True, callback=lambda u, s: limit(u >= 7))
except WriteError as e:
    out["checkpoint_error"] = str(e)
limit(False)
out["latest_after_failure"] = RunCheckpoint.latest_update(run)
out["intact_after_failure"] = checkpoint_problem(str(run / "checkpoints" / "ckpt-6"))
finish = RunDriver._finish
RunDriver._finish = lambda self, *a: (limit(True), finish(self, *a))[1]  # full once training is checkpointed
try:
    resume(run, quiet=True)
except WriteError as e:
    out["final_files_error"] = str(e)
limit(False)
RunDriver._finish = finish
out["unfinished"] = not (run / "summary.json").exists() and RunCheckpoint.latest_update(run) == 30
resume(run, quiet=True)  # finishes from the last checkpoint once there is room
before = digest(run)
other = build_actor_critic(4, 2, seed=7)
limit(True)
for name, write in [("model.keras", lambda: save_model(other, run / "model.keras")),
                    ("saved_model", lambda: export_saved_model(other, run / "saved_model"))]:
    try:
        write()
        out[name] = "written"
    except Exception as e:  # OSError or TensorFlow's error
        out[name] = type(e).__name__
limit(False)
out["model_files_unchanged"] = digest(run) == before
out["leftovers"] = sorted(p.name for p in run.iterdir() if p.name.startswith("."))
print("RESULT " + json.dumps(out))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_full_disk_keeps_the_previous_checkpoint_and_model_files(tmp_path):
    """A file size limit (``RLIMIT_FSIZE``, in a child process) stands for a full disk: writes past it
    fail as they would with ENOSPC, inside TensorFlow's and Keras' own writers."""
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path / "run")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["checkpoint_error"].startswith("cannot write checkpoint ckpt-12 in "), out
    assert out["checkpoint_error"].endswith("(File too large); ckpt-6 is intact: resume from it once there is room")
    assert out["latest_after_failure"] == 6 and out["intact_after_failure"] is None
    assert out["final_files_error"].startswith(f"cannot write the model files in {tmp_path / 'run'} (File too large)")
    assert "a2c train --resume" in out["final_files_error"] and out["unfinished"]
    assert out["model.keras"] != "written" and out["saved_model"] != "written"
    assert out["model_files_unchanged"] and out["leftovers"] == [], out
