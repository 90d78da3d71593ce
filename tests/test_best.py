"""keep_best: the run's model is the weights of its best periodic evaluation, chosen on
seeds of their own, with the last weights kept and scored beside it; resume picks the same."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from a2c.agent.model import build_actor_critic
from a2c.agent.policy import make_greedy
from a2c.artifacts.evaluate import EVAL_SEED_BASE, evaluate_policy
from a2c.artifacts.saving import load_keras_model
from a2c.config.resolve import make_config
from a2c.config.schema import ConfigError
from a2c.run.best import LAST_MODEL_FILE, SELECTION_SEED_BASE, BestWeights
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(v) for v in model.weights]


def test_best_weights_copy_only_a_better_score_and_give_it_back():
    model = build_actor_critic(4, 2, (8,), obs_norm=True, seed=1)
    best = BestWeights(model)
    assert best.offer(10.0, 100)
    kept = _weights(model)
    for v in model.weights:  # training moves every weight, the observation statistics too
        v.assign(np.asarray(v) + 1.0)
    assert not best.offer(10.0, 200) and not best.offer(float("nan"), 300)  # ties keep the earlier weights
    assert best.state() == {"mean_return": 10.0, "step": 100}
    best.restore()
    for a, b in zip(_weights(model), kept, strict=True):
        np.testing.assert_array_equal(a, b)
    for v in model.weights:
        v.assign(np.asarray(v) - 2.0)
    assert best.offer(11.0, 400) and best.step == 400
    best.restore()
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(model), kept))


def test_restore_before_any_evaluation_is_an_error():
    model = build_actor_critic(4, 2, (8,), seed=1)
    with pytest.raises(RuntimeError, match="no evaluation"):
        BestWeights(model).restore()


def _cfg(run_dir: Path, **overrides):
    return make_config(
        {
            "env_id": "CartPole-v1",
            "n_envs": 4,
            "n_steps": 5,
            "total_steps": 6_000,
            "seed": 2,
            "lr": 3e-3,
            "eval_every": 600,
            "eval_episodes": 2,
            "final_eval_episodes": 3,
            "log_every": 20,
            "checkpoint_every": 50,
            "progress": False,
            "keep_best": True,
            "run_dir": str(run_dir),
            **overrides,
        }
    )


def _evaluations(run_dir: Path) -> list[tuple[int, float]]:
    with open(run_dir / "evaluations.csv", newline="") as f:
        return [(int(r["global_step"]), float(r["eval/mean_return"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory):
    return train(_cfg(tmp_path_factory.mktemp("best") / "run"), quiet=True)


def test_the_run_model_is_the_best_periodic_evaluation(kept_run):
    s, run_dir = kept_run.summary, kept_run.run_dir
    rows = _evaluations(run_dir)
    assert len(rows) == 11  # ten periodic ones (600..6000), then the final evaluation
    periodic = rows[:-1]
    best_step, best_mean = max(periodic, key=lambda r: (r[1], -r[0]))  # the first of equal scores
    assert (s["model_step"], s["selection_mean_return"]) == (best_step, best_mean)
    assert s["model_selection"] == "best periodic evaluation"
    assert s["selection_seeds"] == [SELECTION_SEED_BASE, SELECTION_SEED_BASE + 1]
    # The saved model scores exactly what chose it, on the selection seeds...
    model = load_keras_model(run_dir / "model.keras")
    again = evaluate_policy(make_greedy(model, 2), "CartPole-v1", 2, SELECTION_SEED_BASE)
    assert again.mean == s["selection_mean_return"]
    # ...and is reported on the final evaluation's own seeds, never the selection's.
    final = evaluate_policy(make_greedy(model, 3), "CartPole-v1", 3, EVAL_SEED_BASE)
    assert final.mean == s["eval_mean_return"] and s["eval_seeds"] == [EVAL_SEED_BASE, EVAL_SEED_BASE + 2]


def test_the_last_weights_are_saved_and_scored_on_the_final_episodes(kept_run):
    s, run_dir = kept_run.summary, kept_run.run_dir
    last = load_keras_model(run_dir / LAST_MODEL_FILE)
    assert s["last_model_step"] == 6_000
    scored = evaluate_policy(make_greedy(last, 3), "CartPole-v1", 3, EVAL_SEED_BASE)
    assert scored.mean == s["last_model_eval_mean_return"]
    if s["model_step"] != s["last_model_step"]:
        assert any(not np.array_equal(a, b) for a, b in zip(_weights(last), _weights(kept_run.model)))


def test_the_fused_trainer_keeps_the_weights_it_evaluated(tmp_path):
    from a2c.config.resolve import make_fused_config
    from a2c.run.train import train_fused

    cfg = make_fused_config(
        {
            "env_id": "CartPole-v1",
            "n_envs": 8,
            "n_steps": 5,
            "total_steps": 4000,
            "seed": 1,
            "fused_updates_per_call": 5,
            "fused_xla": False,
            "eval_every": 800,
            "eval_episodes": 2,
            "final_eval_episodes": 2,
            "log_every": 10,
            "progress": False,
            "keep_best": True,
            "run_dir": str(tmp_path / "fused"),
        }
    )
    s = train_fused(cfg, quiet=True).summary
    assert s["trainer"] == "fused" and s["model_step"] in {step for step, _ in _evaluations(tmp_path / "fused")}
    model = load_keras_model(tmp_path / "fused" / "model.keras")
    again = evaluate_policy(make_greedy(model, 2), "CartPole-v1", 2, SELECTION_SEED_BASE)
    assert again.mean == s["selection_mean_return"]


def test_without_keep_best_periodic_evaluations_play_the_final_seeds(tmp_path):
    result = train(_cfg(tmp_path / "run", keep_best=False, total_steps=600, eval_every=600), quiet=True)
    assert "model_step" not in result.summary and not (tmp_path / "run" / LAST_MODEL_FILE).exists()
    periodic_mean = _evaluations(tmp_path / "run")[0][1]
    again = evaluate_policy(make_greedy(result.model, 2), "CartPole-v1", 2, EVAL_SEED_BASE)
    assert again.mean == periodic_mean


def test_a_resumed_run_keeps_the_same_model(kept_run, tmp_path):
    stop = lambda update, step: (_ for _ in ()).throw(KeyboardInterrupt) if update == 220 else None  # noqa: E731
    with pytest.raises(TrainingInterrupted):
        train(_cfg(tmp_path / "parts"), quiet=True, callback=stop)
    parts = resume(tmp_path / "parts", quiet=True)
    assert parts.summary["resumed_at_updates"] == [220]
    assert parts.summary["model_step"] < 220 * 20  # chosen before the stop: it came from the checkpoint
    for key in ("model_step", "selection_mean_return", "eval_mean_return", "last_model_eval_mean_return"):
        assert parts.summary[key] == kept_run.summary[key], key
    for a, b in zip(_weights(parts.model), _weights(kept_run.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_keep_best_needs_periodic_evaluations():
    with pytest.raises(ConfigError, match="keep_best .* eval_every > 0"):
        make_config({"keep_best": True, "eval_every": 0})


def test_a_population_refuses_keep_best(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "a2c",
            "train",
            "--fused",
            "--seeds",
            "0-1",
            "--keep-best",
            "--run-dir",
            str(tmp_path / "pop"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "keep_best is for single runs" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "pop").exists()


def test_the_summary_says_which_model_it_reports(kept_run):
    s = json.loads((kept_run.run_dir / "summary.json").read_text())
    assert {"model_step", "selection_mean_return", "last_model_eval_mean_return"} <= s.keys()
