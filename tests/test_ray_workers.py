"""Rollouts on Ray actors (a2c.trainers.ray_workers): the batch equals the local collector's,
checkpoints restore the remote envs, a killed worker is replaced, Ctrl-C leaves no Ray
process behind, and a cluster that cannot be reached is one line and exit 2.

One local Ray (2 CPUs) serves the whole module (the ``local_ray`` fixture)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from a2c.agent.model import model_for  # noqa: E402
from a2c.cli.main import main  # noqa: E402
from a2c.config.resolve import make_config  # noqa: E402
from a2c.envs.make import make_vec_env  # noqa: E402
from a2c.run.signals import TrainingInterrupted  # noqa: E402
from a2c.run.train import resume, train  # noqa: E402
from a2c.trainers.ray_workers import RayCollector  # noqa: E402
from a2c.trainers.rollout import RolloutCollector  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Columns that hold wall-clock times: they differ between two runs of the same config.
CLOCK_COLUMNS = {"time/steps_per_second", "time/elapsed_seconds", "workers/round_seconds", "workers/broadcast_seconds"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in CLOCK_COLUMNS} for row in csv.DictReader(f)]


def worker_cfg(tmp_path: Path, name: str, **overrides):
    """CartPole on 2 workers x 2 envs, 60 updates of 4 x 5 steps."""
    return make_config(
        {
            "workers": 2,
            "envs_per_worker": 2,
            "n_steps": 5,
            "total_steps": 1200,
            "eval_every": 600,
            "eval_episodes": 2,
            "final_eval_episodes": 2,
            "log_every": 4,
            "checkpoint_every": 10,
            "progress": False,
            "run_dir": str(tmp_path / name),
            **overrides,
        }
    )


def test_workers_gather_the_local_collectors_batch_and_restore_their_state(local_ray):
    # Acrobot steps a SyncVectorEnv, whose sub-env i is seeded seed + i: worker w's envs
    # are the local envs 3w..3w+2. (CartPole's numpy-vectorised env draws all its envs'
    # starts from one generator, so there the batches agree in distribution only.)
    cfg = make_config({"env_id": "Acrobot-v1", "workers": 2, "envs_per_worker": 3, "n_steps": 7, "seed": 3})
    assert cfg.n_envs == 6
    env = make_vec_env(cfg.env_id, cfg.n_envs)
    model = model_for(cfg, env.single_observation_space, env.single_action_space)
    local = RolloutCollector(env, model, cfg.n_steps, cfg.seed)
    remote = RayCollector(cfg)
    try:
        assert remote.num_envs == 6 and not remote.shares_model
        rng = np.random.default_rng(0)
        for k in range(4):
            if k == 2:  # new weights: the workers must act with them from the next round
                model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
            remote.set_weights(model.get_weights())
            a, _ = local.collect()
            b, _ = remote.collect()
            for field in a._fields:
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"round {k}: {field}")
        # A checkpoint's state puts the remote envs, RNGs and carried observations back.
        saved = json.loads(json.dumps(remote.state()))
        after, _ = remote.collect()
        remote.collect()
        assert remote.load_state(saved) == []
        again, _ = remote.collect()
        for field in after._fields:
            np.testing.assert_array_equal(getattr(after, field), getattr(again, field))
        assert remote.metrics()["workers/restarts"] == 0 and remote.summary()["worker_nodes"] == 1
    finally:
        remote.close()
        local.close()


def test_recurrent_workers_carry_their_envs_cell_states(local_ray):
    """Each worker carries (and resets) its envs' cell states: the joined batch and its
    rollout-start states and episode starts are a local collector's over all the envs; a
    checkpoint's state puts the states back."""
    cfg = make_config(
        {
            "env_id": "CartPoleNoVel-v1",
            "workers": 2,
            "envs_per_worker": 2,
            "n_steps": 8,
            "seed": 5,
            "recurrent": "gru",
            "recurrent_size": 4,
            "hidden_sizes": (4,),
        }
    )
    env = make_vec_env(cfg.env_id, cfg.n_envs)
    model = model_for(cfg, env.single_observation_space, env.single_action_space)
    local = RolloutCollector(env, model, cfg.n_steps, cfg.seed)
    remote = RayCollector(cfg)
    try:
        remote.set_weights(model.get_weights())
        resets = 0.0
        for k in range(4):
            a, _ = local.collect()
            b, _ = remote.collect()
            for field in a._fields:
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"round {k}: {field}")
            assert local.memory is not None and remote.memory is not None
            np.testing.assert_array_equal(local.memory.starts, remote.memory.starts, err_msg=f"round {k}")
            np.testing.assert_allclose(local.memory.state, remote.memory.state, atol=1e-6, err_msg=f"round {k}")
            resets += remote.memory.starts[1:].sum()
        assert resets > 0 and np.abs(remote.memory.state).max() > 0  # episodes began inside the windows
        saved = json.loads(json.dumps(remote.state()))
        after, _ = remote.collect()
        memory = remote.memory
        remote.collect()
        assert remote.load_state(saved) == []
        again, _ = remote.collect()
        np.testing.assert_array_equal(after.actions, again.actions)
        np.testing.assert_array_equal(memory.state, remote.memory.state)
    finally:
        remote.close()
        local.close()


@pytest.mark.slow
def test_resumed_worker_run_matches_an_uninterrupted_one(local_ray, tmp_path):
    whole = train(worker_cfg(tmp_path, "whole"), quiet=True)
    stop = lambda update, step: (_ for _ in ()).throw(KeyboardInterrupt()) if update == 25 else None  # noqa: E731
    with pytest.raises(TrainingInterrupted):
        train(worker_cfg(tmp_path, "parts"), quiet=True, callback=stop)
    parts = resume(tmp_path / "parts", quiet=True)
    for wa, wb in zip(whole.model.get_weights(), parts.model.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert read_csv(whole.run_dir / "metrics.csv") == read_csv(parts.run_dir / "metrics.csv")
    assert parts.summary["resumed_at_updates"] == [25] and parts.summary["workers"] == 2
    assert whole.summary["worker_restarts"] == 0 and whole.summary["envs_per_worker"] == 2
    assert "workers/restarts" in read_csv(whole.run_dir / "metrics.csv")[0]
    # The run directory is the single-process trainer's: evaluate works on it.
    assert main(["evaluate", str(whole.run_dir), "--episodes", "2"]) == 0


def _worker_processes() -> list:
    """This module's Ray's live worker processes (its raylet is a child of this process)."""
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "ray::RolloutWorker" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def test_a_killed_worker_is_restarted_and_training_continues(local_ray, tmp_path):
    killed: list[int] = []

    def kill_one(update: int, step: int) -> None:
        if update == 10:
            victim = _worker_processes()[0]
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    # One worker (of 4 envs): the cheapest pool; its death stops every collection until Ray restarts it.
    result = train(
        worker_cfg(tmp_path, "kill", workers=1, envs_per_worker=4, total_steps=800), quiet=True, callback=kill_one
    )
    assert killed and result.summary["worker_restarts"] == 1
    assert result.summary["total_steps"] == 800
    rows = read_csv(result.run_dir / "metrics.csv")
    assert float(rows[0]["workers/restarts"]) == 0 and float(rows[-1]["workers/restarts"]) == 1
    deadline = time.monotonic() + 15
    while _worker_processes():  # the run's workers are gone with it
        assert time.monotonic() < deadline, _worker_processes()
        time.sleep(0.2)


def test_unreachable_ray_address_is_one_line_and_exit_2(local_ray, tmp_path, capsys):
    run_dir = tmp_path / "never"
    code = main(
        [
            "train",
            "--workers",
            "2",
            "--ray-address",
            "127.0.0.1:1",
            "--total-steps",
            "100",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in err
    assert err.strip().splitlines() == [err.strip()] and not run_dir.exists()


def test_more_workers_than_the_cluster_has_cpus_is_refused(local_ray):
    from a2c.trainers.ray_workers import ClusterError

    with pytest.raises(ClusterError, match="has 2 CPUs and --workers 3 needs one each"):
        RayCollector(make_config({"workers": 3, "envs_per_worker": 1}))


def test_ctrl_c_checkpoints_leaves_no_ray_process_and_resumes(local_ray, tmp_path):
    """A CLI run that starts its own Ray: SIGINT checkpoints, stops the workers and Ray;
    the run then resumes on workers (here on the module's Ray) and finishes."""
    import psutil

    run_dir = tmp_path / "sigint"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": tempfile.mkdtemp(prefix="r", dir="/tmp")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "a2c",
            "train",
            "--workers",
            "1",
            "--envs-per-worker",
            "4",
            "--total-steps",
            "2000",
            "--log-every",
            "1",
            "--eval-every",
            "0",
            "--final-eval-episodes",
            "0",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not ((run_dir / "metrics.csv").is_file() and len(read_csv(run_dir / "metrics.csv")) >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
            time.sleep(0.1)
        ray_processes = psutil.Process(proc.pid).children(recursive=True)
        assert any("RolloutWorker" in " ".join(p.cmdline()) for p in ray_processes)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Continue with: a2c train --resume" in stderr
    deadline = time.monotonic() + 15
    while alive := [p for p in ray_processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]:
        assert time.monotonic() < deadline, f"left running: {[p.cmdline()[:2] for p in alive]}"
        time.sleep(0.2)
    # What the checkpoint holds comes back (the remote envs included); the rest of the budget runs.
    done = resume(run_dir, quiet=True)
    assert done.summary["total_steps"] == 2000 and done.summary["workers"] == 1
    assert len(done.summary["resumed_at_updates"]) == 1
