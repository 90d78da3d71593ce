"""A3C on Ray workers (a2c.trainers.a3c): worker gradients are the learner's own, a run logs
staleness, stops, resumes and writes the single-process trainer's run directory; and
it learns CartPole (slow). One local Ray (2 CPUs) for the module."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from a2c.agent.learner import GRADIENT_METRICS, make_apply, make_gradients, make_optimizer, make_update  # noqa: E402
from a2c.agent.model import model_for  # noqa: E402
from a2c.config.resolve import make_config  # noqa: E402
from a2c.envs.make import make_vec_env  # noqa: E402
from a2c.run.signals import TrainingInterrupted  # noqa: E402
from a2c.run.train import resume, train  # noqa: E402
from a2c.trainers.rollout import RolloutCollector  # noqa: E402


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


RECURRENT = {"env_id": "CartPoleNoVel-v1", "recurrent": "lstm", "recurrent_size": 4, "hidden_sizes": (4,)}


@pytest.mark.parametrize("overrides", [{}, RECURRENT], ids=["feed-forward", "lstm"])
def test_gradients_then_apply_is_one_update(overrides):
    """A worker's gradients applied by the learner = the standard trainer's update (a recurrent
    model's: both unrolled from the rollout-start states, over a window with episode starts)."""
    cfg = make_config({"n_envs": 4, "n_steps": 5, "lr": 1e-2, **overrides})
    env = make_vec_env(cfg.env_id, cfg.n_envs)
    model = model_for(cfg, env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, model, cfg.n_steps, seed=0)
    for _ in range(20):  # CartPole's random episodes are short: a window with an episode start inside
        batch, _ = collector.collect()
        memory = collector.memory
        if memory is None or (memory.starts[1:].sum() > 0 and np.abs(memory.state).max() > 0):
            break
    else:
        raise AssertionError("no episode started inside a window")
    args = (batch,) if memory is None else (batch, memory)
    twin = model_for(cfg, env.single_observation_space, env.single_action_space)
    twin.set_weights(model.get_weights())
    expected = make_update(twin, make_optimizer(cfg), cfg)(*args)
    grads, metrics = make_gradients(model, cfg)(*args)
    applied = make_apply(model, make_optimizer(cfg))(
        [g.numpy() for g in grads], {k: float(v) for k, v in metrics.items()}
    )
    for k in GRADIENT_METRICS:
        np.testing.assert_allclose(float(applied[k]), float(expected[k]), rtol=1e-5, err_msg=k)
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    env.close()


def a3c_cfg(tmp_path: Path, **overrides):
    """CartPole on 2 workers x 2 envs, 50 logged updates of 2 gradients."""
    return make_config(
        {
            "workers": 2,
            "envs_per_worker": 2,
            "async_updates": True,
            "n_steps": 5,
            "total_steps": 1000,
            "eval_every": 500,
            "eval_episodes": 2,
            "final_eval_episodes": 2,
            "log_every": 5,
            "checkpoint_every": 10,
            "progress": False,
            "run_dir": str(tmp_path / "a3c"),
            **overrides,
        }
    )


def test_a3c_run_logs_staleness_and_writes_a_run_directory(local_ray, tmp_path):
    result = train(a3c_cfg(tmp_path), quiet=True)
    s = result.summary
    assert s["trainer"] == "a3c" and s["total_steps"] == 1000 and s["workers"] == 2
    assert s["worker_restarts"] == 0 and 0 <= s["staleness_mean"] <= s["staleness_max"]
    rows = read_csv(result.run_dir / "metrics.csv")
    assert [int(r["update"]) for r in rows] == list(range(5, 51, 5))
    staleness = [float(r["workers/staleness_max"]) for r in rows]
    assert all(0 <= x for x in staleness) and max(staleness) >= 1  # two workers: the other one moved on
    assert all(np.isfinite(float(rows[-1][f"train/{k}"])) for k in GRADIENT_METRICS)
    assert (result.run_dir / "saved_model").is_dir() and (result.run_dir / "model.keras").is_file()


@pytest.mark.slow
def test_a3c_run_stops_and_resumes(local_ray, tmp_path):
    """The workers' collectors come back; the gradients in flight at the checkpoint do not."""

    def stop(update: int, step: int) -> None:
        if update == 20:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(a3c_cfg(tmp_path), quiet=True, callback=stop)
    done = resume(tmp_path / "a3c", quiet=True)
    assert done.summary["total_steps"] == 1000 and done.summary["resumed_at_updates"] == [20]


@pytest.mark.slow
@pytest.mark.parametrize("async_updates", [False, True], ids=["sync", "a3c"])
def test_two_workers_solve_cartpole(local_ray, tmp_path, async_updates):
    """The CartPole preset (16 envs) on 2 workers x 8 envs: greedy 100-episode mean >= 475."""
    cfg = make_config(
        {
            "workers": 2,
            "async_updates": async_updates,
            "eval_every": 50_000,
            "progress": False,
            "run_dir": str(tmp_path / "solve"),
        }
    )
    assert dataclasses.asdict(cfg)["n_envs"] == 16 and cfg.envs_per_worker == 8
    result = train(cfg, quiet=True)
    assert result.summary["eval_episodes"] == 100
    assert result.summary["eval_mean_return"] >= 475, result.summary


# MultiBinary by default (~10 s each); MultiDiscrete's sums are the same code and run with -m slow.
@pytest.mark.parametrize("env", [pytest.param("MultiDiscreteIdentity", marks=pytest.mark.slow), "MultiBinaryIdentity"])
def test_a3c_trains_multi_discrete_and_multi_binary_policies(local_ray, tmp_path, env):
    """The workers only need the distribution: int32 action vectors go through their rollouts and gradients."""
    cfg = a3c_cfg(tmp_path, env_id=f"tests.spaces_envs:A2CTest/{env}-v0", eval_every=0)
    result = train(cfg, quiet=True)
    assert result.summary["total_steps"] == 1000 and result.summary["worker_restarts"] == 0
    rows = read_csv(result.run_dir / "metrics.csv")
    assert all(np.isfinite(float(rows[-1][f"train/{k}"])) for k in GRADIENT_METRICS)


@pytest.mark.slow
def test_a3c_trains_a_recurrent_policy(local_ray, tmp_path):
    """Each worker carries its own envs' cell states and unrolls its gradients from them; the
    run directory evaluates as a recurrent one."""
    from a2c.agent.model import state_size_of

    cfg = a3c_cfg(tmp_path, **{**RECURRENT, "recurrent": "gru"}, total_steps=400, eval_every=0)
    result = train(cfg, quiet=True)
    assert result.summary["total_steps"] == 400 and result.summary["worker_restarts"] == 0
    assert state_size_of(result.model) == 4 and result.summary["eval_episodes"] == 2
    rows = read_csv(result.run_dir / "metrics.csv")
    assert all(np.isfinite(float(rows[-1][f"train/{k}"])) for k in GRADIENT_METRICS)


@pytest.mark.slow  # ~20 s; separate networks' gradients go through the learner code the default suite checks
def test_a3c_trains_separate_actor_and_critic_networks(local_ray, tmp_path):
    from a2c.agent.model import net_arch_of

    result = train(a3c_cfg(tmp_path, net_arch="separate", eval_every=0), quiet=True)
    assert net_arch_of(result.model) == "separate" and result.summary["total_steps"] == 1000


# Sync workers by default; the A3C variant (~20 s) runs with -m slow.
@pytest.mark.parametrize("async_updates", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["sync", "a3c"])
def test_ray_workers_train_on_dict_observations(local_ray, tmp_path, async_updates):
    """Dict observations cross the workers as one array per key (sync: concatenated key by key)."""
    cfg = a3c_cfg(tmp_path, env_id="tests.spaces_envs:A2CTest/DictObs-v0", eval_every=0, async_updates=async_updates)
    result = train(cfg, quiet=True)
    assert result.summary["total_steps"] == 1000 and result.summary["worker_restarts"] == 0
    assert (result.run_dir / "saved_model").is_dir()
