"""benchmarks/bench_robustness.py: what a run's evaluations say (solved, collapsed, stable), keep_best's
kept-model verdict, and the cache keys that let a pinned candidate and a preset share their runs."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import bench_robustness as br  # noqa: E402

from a2c.config.resolve import make_config, make_fused_config  # noqa: E402


def _run_dir(tmp_path: Path, returns: list[float], every: int = 10_000, summary: dict | None = None) -> Path:
    steps = [every * (k + 1) for k in range(len(returns))]
    with open(tmp_path / "evaluations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["global_step", "eval/mean_return", "eval/min_return", "time/elapsed_seconds"])
        w.writerows([s, r, r, s / 1000] for s, r in zip(steps, returns, strict=True))
    with open(tmp_path / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["global_step", "time/elapsed_seconds", *br.DIAGNOSTICS])
        w.writerows([s, s / 1000, 0.5, 0.1, 1e-3, 0.9] for s in steps)
    if summary is not None:
        (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


def test_a_dip_after_a_solve_is_a_collapse_and_the_stable_solve_follows_it(tmp_path):
    bench = br.ENVS["CartPole-v1"]
    out = br.outcome(_run_dir(tmp_path, [100.0, 500.0, 150.0, 480.0, 500.0]), bench)
    assert out["first_solve_steps"] == 20_000 and out["collapsed_at_steps"] == 30_000
    assert out["stable_solve_steps"] == 40_000 and out["solved_at_end"] and out["final_eval"] == 500.0
    # a fall that stays above half the threshold is no collapse
    again = br.outcome(_run_dir(tmp_path, [500.0, 300.0, 500.0]), bench)
    assert again["collapsed_at_steps"] is None and again["stable_solve_steps"] == 30_000


def test_keep_best_runs_are_judged_on_the_kept_models_fresh_episodes(tmp_path):
    bench = br.ENVS["LunarLander-v3"]
    summary = {
        "model_selection": "best periodic evaluation",
        "model_step": 20_000,
        "eval_mean_return": 190.0,
        "last_model_eval_mean_return": -40.0,
    }
    out = br.outcome(_run_dir(tmp_path, [50.0, 230.0, -30.0], summary=summary), bench)
    # the kept model's 190 on fresh episodes, not the 230 that chose it nor the last -30
    assert out["final_eval"] == 190.0 and not out["solved_at_end"]
    assert out["kept_model_step"] == 20_000 and out["last_model_eval"] == -40.0
    summary["eval_mean_return"] = 215.0
    assert br.outcome(_run_dir(tmp_path, [50.0, 230.0, -30.0], summary=summary), bench)["solved_at_end"]
    # without keep_best the last periodic evaluation decides
    plain = br.outcome(_run_dir(tmp_path, [50.0, 230.0, -30.0], summary={"eval_mean_return": 300.0}), bench)
    assert plain["final_eval"] == -30.0 and not plain["solved_at_end"]


def test_cache_keys_follow_the_resolved_config(monkeypatch):
    monkeypatch.setattr(br, "CACHE", Path("/cache"))

    def key(env_id: str, name: str, seed: int = 100_000) -> Path:
        resolve = make_fused_config if br.ENVS[env_id].candidates[name].get("fused") else make_config
        return br.cache_path(resolve(br._overrides(env_id, name, seed, 0)))

    # the fused preset and the candidate that pins its values are one config: they share their runs
    assert key("CartPole-v1", "fused") == key("CartPole-v1", "fused_16envs_lr2e-3")
    assert key("Acrobot-v1", "fused") == key("Acrobot-v1", "fused_16envs_lr1e-3")
    assert key("Acrobot-v1", "preset") == key("Acrobot-v1", "linear") != key("Acrobot-v1", "constant_lr")
    # the candidates that pin the previous presets keep those runs apart from the new preset's
    assert key("CartPole-v1", "fused_64envs_lr4e-3") != key("CartPole-v1", "fused")
    assert key("CartPole-v1", "preset").parent != key("CartPole-v1", "lr3e-3").parent
    assert key("CartPole-v1", "preset", 100_001).parent == key("CartPole-v1", "preset").parent
    assert key("CartPole-v1", "preset", 100_001).name == "100001.json"


@pytest.mark.parametrize("env_id", sorted(br.ENVS))
def test_every_candidate_resolves_to_a_valid_config(env_id):
    for name, overrides in br.ENVS[env_id].candidates.items():
        resolve = make_fused_config if overrides.get("fused") else make_config
        cfg = resolve(br._overrides(env_id, name, br.FIRST_SEED, 0))
        assert cfg.env_id == env_id and cfg.eval_episodes == 20, name
