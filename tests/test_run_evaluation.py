"""A run's evaluation policy (a2c.run.evaluation): greedy as before, or sampled per episode with the greedy
score beside it; reproducible, resumed exactly, and what ``a2c evaluate`` plays by default."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from a2c.agent.model import model_for
from a2c.agent.policy import SAMPLING_STREAM, make_greedy, make_sampled
from a2c.artifacts.evaluate import EVAL_SEED_BASE, evaluate_policy
from a2c.artifacts.loading import evaluate_path
from a2c.cli.main import main
from a2c.config.resolve import make_config
from a2c.envs.make import env_spaces
from a2c.run.evaluation import RunEvaluation
from a2c.run.logger import EVAL_COLUMNS, GREEDY_EVAL_COLUMNS
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train

TIME_COLUMNS = {"time/steps_per_second", "time/elapsed_seconds"}


def tiny(run_dir: Path, **overrides):
    """40 CartPole updates; evaluations every 20, checkpoints every 6."""
    return make_config(
        {
            "total_steps": 800,
            "n_envs": 4,
            "n_steps": 5,
            "eval_every": 400,
            "eval_episodes": 3,
            "final_eval_episodes": 4,
            "log_every": 7,
            "checkpoint_every": 6,
            "progress": False,
            "run_dir": str(run_dir),
            **overrides,
        }
    )


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in reader]
        return list(reader.fieldnames or []), rows


def stop_at(update: int):
    def callback(u: int, step: int) -> None:
        if u == update:
            raise KeyboardInterrupt(f"test stop at update {u}")

    return callback


@pytest.fixture(scope="module")
def sampled_run(tmp_path_factory) -> tuple[Path, dict]:
    """An uninterrupted run that evaluates the sampled policy."""
    result = train(tiny(tmp_path_factory.mktemp("sampled") / "run", eval_policy="sampled"), quiet=True)
    return result.run_dir, result.summary


def test_sampled_evaluations_log_the_greedy_score_beside_them(sampled_run):
    run_dir, summary = sampled_run
    header, rows = read_csv(run_dir / "evaluations.csv")
    assert tuple(header) == EVAL_COLUMNS + GREEDY_EVAL_COLUMNS
    assert [int(r["global_step"]) for r in rows] == [400, 800, 800]  # two periodic, the final
    for row in rows:
        assert row["eval/greedy_mean_return"] != "" and row["eval/greedy_std_return"] != ""
    assert summary["eval_policy"] == "sampled" and summary["eval_episodes"] == 4
    final = rows[-1]
    assert float(final["eval/mean_return"]) == pytest.approx(summary["eval_mean_return"])
    assert float(final["eval/greedy_mean_return"]) == pytest.approx(summary["eval_greedy_mean_return"])


def test_greedy_runs_log_what_they_always_did(shared_run_dir):
    header, rows = read_csv(shared_run_dir / "evaluations.csv")
    summary = json.loads((shared_run_dir / "summary.json").read_text())
    assert tuple(header) == EVAL_COLUMNS and len(rows) == 3
    assert summary["eval_policy"] == "greedy" and "eval_greedy_mean_return" not in summary


@pytest.mark.slow  # ~10 s; exact resume itself is in the default suite (tests/test_checkpoint.py)
def test_a_stopped_sampled_run_resumes_exactly_and_one_from_before_eval_policy_resumes_greedy(tmp_path, sampled_run):
    ref_dir, ref_summary = sampled_run
    cfg = tiny(tmp_path / "run", eval_policy="sampled")
    with pytest.raises(TrainingInterrupted):
        train(cfg, quiet=True, callback=stop_at(25))  # after the first periodic evaluation
    legacy = tmp_path / "legacy"
    shutil.copytree(cfg.run_dir, legacy)
    summary = resume(cfg.run_dir, quiet=True).summary
    assert summary["resumed_at_updates"] == [25]
    assert read_csv(Path(cfg.run_dir) / "evaluations.csv") == read_csv(ref_dir / "evaluations.csv")
    for key in ("eval_mean_return", "eval_std_return", "eval_greedy_mean_return", "eval_greedy_std_return"):
        assert summary[key] == ref_summary[key], key
    # As written before the field existed: the run goes on evaluating greedily, in the columns its file has.
    toml = legacy / "config.toml"
    toml.write_text("".join(x for x in toml.read_text().splitlines(keepends=True) if not x.startswith("eval_policy")))
    summary = resume(legacy, quiet=True).summary
    assert summary["eval_policy"] == "greedy" and "eval_greedy_mean_return" not in summary
    header, rows = read_csv(legacy / "evaluations.csv")
    assert tuple(header) == EVAL_COLUMNS + GREEDY_EVAL_COLUMNS
    assert [r["eval/greedy_mean_return"] != "" for r in rows] == [True, False, False]


def test_sampled_play_is_seeded_per_episode_and_apart_from_the_envs_draws():
    cfg = make_config({"eval_policy": "sampled"})
    obs_space, action_space = env_spaces(cfg.env_id)
    model = model_for(cfg, obs_space, action_space)
    three = RunEvaluation(model, cfg, 3)
    sampled, greedy = three.play(EVAL_SEED_BASE)
    assert greedy is not None and sampled.seeds == greedy.seeds == [EVAL_SEED_BASE + k for k in range(3)]
    again, _ = three.play(EVAL_SEED_BASE)
    assert again.returns == sampled.returns  # each evaluation starts its generators afresh
    # Episode k depends on its seed alone: two episodes from the next seed replay episodes 1 and 2.
    later, _ = RunEvaluation(model, cfg, 2).play(EVAL_SEED_BASE + 1)
    assert later.returns == sampled.returns[1:]
    assert greedy.returns == evaluate_policy(make_greedy(model, 3), cfg.env_id, 3).returns
    # The policy's noise is not the env's own stream of the same seed (gymnasium's SeedSequence(seed)).
    assert SAMPLING_STREAM != 0
    policy = make_sampled(model, 1)(7)
    uniform_logits_obs = np.zeros((1, 4), np.float32)
    first = [int(policy(uniform_logits_obs)[0]) for _ in range(32)]
    env_stream = np.random.default_rng(7).random((32, action_space.n), dtype=np.float32)
    params = model(uniform_logits_obs)["logits"].numpy()[0]
    same_stream = [int(np.argmax(params - np.log(-np.log(u)))) for u in env_stream]
    assert first != same_stream


def test_a2c_evaluate_plays_the_runs_own_policy_by_default(sampled_run, capsys):
    run_dir, _ = sampled_run
    result, info = evaluate_path(run_dir, episodes=2)
    assert info["policy"] == "sample"
    assert evaluate_path(run_dir, episodes=2, sample=True)[0].returns == result.returns
    assert main(["evaluate", str(run_dir), "--episodes", "2", "--greedy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == "greedy"


def test_a_population_refuses_sampled_evaluations(capsys):
    args = ["train", "--fused", "--seeds", "0-1", "--eval-policy", "sampled", "--total-steps", "100"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--eval-policy sampled" in err[0]
