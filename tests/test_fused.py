"""The fused trainer (a2c.trainers.fused): same loss as the standard trainer, one trace, learning,
determinism, the run directory written through the command line, unported envs refused.

An XLA-compiled FusedLoop costs a few seconds of compilation, so the tests share
loops: per executor (XLA, graph), two identical loops serve the learning, determinism
and tracing checks.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.batch import Rollout
from a2c.agent.learner import compute_loss, make_optimizer, make_update, update_step
from a2c.agent.model import build_actor_critic
from a2c.common.errors import ConfigError, EnvError
from a2c.config.presets import FUSED_PRESETS
from a2c.config.resolve import make_config, make_fused_config
from a2c.envs.tf_envs import PORTED_ENVS
from a2c.run.logger import EVAL_COLUMNS, METRIC_COLUMNS
from a2c.run.train import train_fused
from a2c.trainers.fused import FusedLoop, keep_truncated, ported_env

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------- same loss, same gradients
def _two_layouts(seed: int = 0):
    """One set of transitions in both autoreset layouts.

    Same-step (the TF ports, fused trainer): T steps, ``obs[t + 1]`` is already the next
    episode's first observation where step t ended one, ``final_obs[t]`` the episode's
    last; every transition is valid. Next-step (gymnasium, standard trainer): the step
    after an episode's end is a reset step (``valid`` 0) whose observation is the final
    one, so each env needs T + 1 steps here. Env 0 terminates at step 1, env 1 is
    truncated at step 3, env 2 terminates and is truncated at once at step 4.
    """
    rng = np.random.default_rng(seed)
    t_len, n, d = 6, 3, 4
    ends = {0: (1, 1.0, 0.0), 1: (3, 0.0, 1.0), 2: (4, 1.0, 1.0)}  # env: (step, terminated, truncated)
    obs = rng.normal(size=(t_len + 1, n, d)).astype(np.float32)
    final = obs[1:].copy()
    actions = rng.integers(0, 2, size=(t_len, n)).astype(np.int32)
    rewards = rng.normal(size=(t_len, n)).astype(np.float32)
    term = np.zeros((t_len, n), np.float32)
    trunc = np.zeros((t_len, n), np.float32)
    for env, (t, te, tr) in ends.items():
        final[t, env] = rng.normal(size=d)
        term[t, env], trunc[t, env] = te, tr
    same_step = Rollout(obs, actions, rewards, term, trunc, np.ones((t_len, n), np.float32))

    ns = {
        k: np.zeros((t_len + 1,) + a.shape[1:], a.dtype)
        for k, a in (("actions", actions), ("rewards", rewards), ("terminated", term), ("truncated", trunc))
    }
    ns_obs = np.zeros((t_len + 2, n, d), np.float32)
    valid = np.ones((t_len + 1, n), np.float32)
    for env, (end, _, _) in ends.items():
        src = [*range(end + 1), None, *range(end + 1, t_len)]  # None: the reset step
        for row, t in enumerate(src):
            if t is None:
                ns_obs[row, env] = final[end, env]
                valid[row, env] = 0.0
                continue
            ns_obs[row, env] = obs[t, env]
            for k, a in (("actions", actions), ("rewards", rewards), ("terminated", term), ("truncated", trunc)):
                ns[k][row, env] = a[t, env]
        ns_obs[t_len + 1, env] = obs[t_len, env]
    next_step = Rollout(ns_obs, ns["actions"], ns["rewards"], ns["terminated"], ns["truncated"], valid)
    return same_step, final, next_step


def _tensors(batch: Rollout) -> Rollout:
    return tf.nest.map_structure(tf.constant, batch)


def _truncation_obs(final: np.ndarray, truncated: np.ndarray) -> tf.Tensor:
    """Each env's final observation of the episode it truncated, as the fused rollout keeps it; the
    rows of envs that truncated none hold values the bootstrap must not read."""
    rows = np.full(final.shape[1:], 1e3, np.float32)
    for t, env in zip(*np.nonzero(truncated), strict=True):
        rows[env] = final[t, env]
    return tf.constant(rows)


def test_fused_and_standard_paths_give_the_same_loss_and_gradients():
    same_step, final_obs, next_step = _two_layouts()
    cfg = make_config(
        {"gamma": 0.9, "gae_lambda": 0.8, "normalize_advantage": True, "ent_coef": 0.01, "n_envs": 3, "n_steps": 6}
    )
    model = build_actor_critic(4, 2, (16, 16), seed=3)
    with tf.GradientTape(persistent=True) as tape:
        loss_std, parts_std = compute_loss(model, _tensors(next_step), cfg)
        loss_fused, parts_fused = compute_loss(
            model, _tensors(same_step), cfg, truncation_obs=_truncation_obs(final_obs, same_step.truncated)
        )
    np.testing.assert_allclose(loss_fused.numpy(), loss_std.numpy(), rtol=1e-5, atol=1e-6)
    for key in parts_std:
        np.testing.assert_allclose(parts_fused[key].numpy(), parts_std[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    grads_std = tape.gradient(loss_std, model.trainable_variables)
    grads_fused = tape.gradient(loss_fused, model.trainable_variables)
    for g_std, g_fused in zip(grads_std, grads_fused, strict=True):
        np.testing.assert_allclose(g_fused.numpy(), g_std.numpy(), rtol=1e-4, atol=1e-6)
    # The bootstrap really comes from the truncated episodes' final obs: with obs[T] instead, the loss differs.
    wrong, _ = compute_loss(model, _tensors(same_step), cfg, truncation_obs=tf.constant(same_step.obs[-1]))
    assert abs(float(wrong) - float(loss_std)) > 1e-4


def test_one_update_matches_between_the_compiled_paths():
    """The standard trainer's make_update (TF graph) on the next-step batch and the fused
    loop's update_step under XLA on the same-step batch move the weights identically."""
    same_step, final_obs, next_step = _two_layouts(seed=1)
    base = {"gamma": 0.95, "gae_lambda": 1.0, "n_envs": 3, "max_grad_norm": 0.5}
    cfg_std = make_config({**base, "n_steps": 7})
    cfg_fused = make_config({**base, "n_steps": 6})
    model_std = build_actor_critic(4, 2, (16, 16), seed=5)
    model_fused = build_actor_critic(4, 2, (16, 16), seed=5)
    make_update(model_std, keras.optimizers.SGD(0.5), cfg_std)(_tensors(next_step))
    optimizer = keras.optimizers.SGD(0.5)
    optimizer.build(model_fused.trainable_variables)
    fused_update = tf.function(
        lambda b, f: update_step(model_fused, optimizer, b, cfg_fused, truncation_obs=f),
        jit_compile=True,
        autograph=False,
    )
    fused_update(_tensors(same_step), _truncation_obs(final_obs, same_step.truncated))
    for w_std, w_fused in zip(model_std.trainable_variables, model_fused.trainable_variables, strict=True):
        np.testing.assert_allclose(w_fused.numpy(), w_std.numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- learning, determinism, tracing
CALLS, K = 8, 60


def _loop(seed: int, xla: bool) -> FusedLoop:
    cfg = make_fused_config({"seed": seed, "fused_xla": xla})
    cfg = make_fused_config(
        {"seed": seed, "fused_xla": xla, "total_steps": cfg.batch_size * CALLS * K}
    )  # the lr decays over it
    env = ported_env(cfg.env_id)
    model = build_actor_critic(env.obs_dim, env.n_actions, cfg.hidden_sizes, cfg.activation, seed=cfg.seed)
    return FusedLoop(model, make_optimizer(cfg), cfg, env)


@pytest.fixture(scope="module")
def runs_by_executor():
    """Per executor (fused_xla False/True), two loops with the same seed, each compiled
    then run CALLS x K updates."""
    by_executor = {}
    for xla in (False, True):
        runs = []
        for _ in range(2):
            loop = _loop(seed=1, xla=xla)
            loop.compile()
            history = [{k: float(v) for k, v in loop.run(tf.constant(K)).items()} for _ in range(CALLS)]
            runs.append((loop, history))
        by_executor[xla] = runs
    return by_executor


@pytest.fixture(params=[False, True], ids=["graph", "xla"])
def twin_runs(request, runs_by_executor):
    return runs_by_executor[request.param]


def test_short_fused_training_learns_cartpole(twin_runs):
    loop, history = twin_runs[0]
    returns = [h["return_sum"] / h["episodes"] for h in history]
    assert loop.cfg.n_envs == FUSED_PRESETS["CartPole-v1"]["n_envs"]  # the preset
    # A random policy lasts ~22 steps; the first call's episodes also see its first updates.
    assert returns[0] < 80, [round(r) for r in returns]
    assert np.mean(returns[-2:]) > max(150, 2 * returns[0]), [round(r) for r in returns]


def test_fused_training_is_deterministic(twin_runs):
    (loop_a, hist_a), (loop_b, hist_b) = twin_runs
    assert hist_a == hist_b
    for w_a, w_b in zip(loop_a.model.get_weights(), loop_b.model.get_weights(), strict=True):
        np.testing.assert_array_equal(w_a, w_b)
    np.testing.assert_array_equal(loop_a.state.obs.numpy(), loop_b.state.obs.numpy())


def test_the_executors_really_differ(runs_by_executor):
    """XLA fuses, reorders and draws random numbers with its own kernels: with the same
    seed the two executors train alike but not bit for bit (so fused_xla is obeyed)."""
    (graph_loop, graph_history), (xla_loop, xla_history) = runs_by_executor[False][0], runs_by_executor[True][0]
    assert (graph_loop.cfg.fused_xla, xla_loop.cfg.fused_xla) == (False, True)
    assert graph_history != xla_history


def test_the_fused_loop_traces_once(twin_runs):
    loop, _ = twin_runs[0]
    for k in (1, 3, 0):  # any number of updates per call: one trace, one executable
        loop.run(tf.constant(k))
    assert loop.traces == 1
    assert loop.run.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("xla", [False, True], ids=["graph", "xla"])
def test_thousands_of_envs(xla):
    """A batch of 4096 envs runs in either executor."""
    cfg = make_fused_config(
        {"n_envs": 4096, "n_steps": 2, "total_steps": 4096 * 2 * 2, "hidden_sizes": (8,), "fused_xla": xla}
    )
    env = ported_env(cfg.env_id)
    model = build_actor_critic(env.obs_dim, env.n_actions, cfg.hidden_sizes, cfg.activation, seed=0)
    loop = FusedLoop(model, make_optimizer(cfg), cfg, env)
    out = loop.run(tf.constant(2))
    assert np.isfinite(float(out["total_loss"]))
    assert loop.state.obs.shape == (4096, 4)
    # 2 updates x 2 steps in every env; no CartPole episode can end within 4 steps.
    np.testing.assert_array_equal(loop.state.ep_length.numpy(), np.full(4096, 4))


def test_keep_truncated_keeps_each_envs_truncated_final_obs():
    """Carried through a rollout, the rows of the envs that truncated hold their final observation."""
    kept = tf.zeros([3, 2])
    final = [tf.fill([3, 2], float(t + 1)) for t in range(3)]
    truncated = [tf.constant(x) for x in ([False, True, False], [False, False, False], [True, False, False])]
    for f, tr in zip(final, truncated, strict=True):
        kept = keep_truncated(tr, f, kept)
    np.testing.assert_array_equal(kept.numpy(), [[3, 3], [1, 1], [0, 0]])
    # A population's (P, n) flags and (P, n, d) observations alike.
    kept = keep_truncated(tf.constant([[True, False]]), tf.ones([1, 2, 4]), tf.zeros([1, 2, 4]))
    np.testing.assert_array_equal(kept.numpy()[0], [[1] * 4, [0] * 4])


# ------------------------------------------------------------------------ errors and config
def test_a_rollout_longer_than_the_time_limit_is_refused(tmp_path):
    """One final observation per env bootstraps a rollout's truncations only if no env can truncate twice."""
    cfg = make_fused_config({"n_steps": 501, "run_dir": str(tmp_path / "run")})
    with pytest.raises(ConfigError, match=r"n_steps <= the time limit of CartPole-v1 \(500 steps\); got n_steps=501"):
        train_fused(cfg)
    assert not (tmp_path / "run").exists()


def test_an_env_without_a_port_is_refused_with_the_ported_list(tmp_path):
    with pytest.raises(EnvError, match="'LunarLander-v3' has none; ported environments: Acrobot-v1, CartPole-v1"):
        make_fused_config({"env_id": "LunarLander-v3"})  # no fused preset: no port
    assert set(FUSED_PRESETS) == set(PORTED_ENVS)
    cfg = make_config({"env_id": "LunarLander-v3", "fused": True, "run_dir": str(tmp_path / "run")})
    with pytest.raises(EnvError) as info:
        train_fused(cfg)
    message = str(info.value)
    assert "LunarLander-v3" in message
    assert "Acrobot-v1, CartPole-v1, MountainCar-v0" in message
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_fused_preset_layering(tmp_path):
    cfg = make_fused_config({"env_id": "CartPole-v1"})
    assert cfg.fused and cfg.n_envs == FUSED_PRESETS["CartPole-v1"]["n_envs"]
    toml = tmp_path / "c.toml"
    toml.write_text("n_envs = 32\nlr = 0.001\nfused_xla = true\n")
    cfg = make_fused_config({"lr": 0.002}, toml)  # preset < TOML < flags
    assert (cfg.n_envs, cfg.lr, cfg.n_steps) == (32, 0.002, FUSED_PRESETS["CartPole-v1"]["n_steps"])
    assert cfg.fused_xla is True and cfg.reward_scale == 0.1  # TOML beats the preset's executor
    preset = make_fused_config({"env_id": "CartPole-v1"})
    assert preset.fused_xla is False and make_fused_config({"fused_xla": True}).fused_xla is True
    assert make_fused_config({"env_id": "MountainCar-v0"}).fused_xla is True
    assert make_config({}).fused is False  # standard mode untouched
    # the fused preset's fields stay out of standard mode
    assert make_config({}).eval_every == 20_000 != FUSED_PRESETS["CartPole-v1"]["eval_every"]
    # The standard Acrobot preset normalises rewards on the host; fused mode has no host step and
    # keeps the constant scale its preset was tuned with.
    assert make_config({"env_id": "Acrobot-v1"}).normalize_reward is True
    acrobot = make_fused_config({"env_id": "Acrobot-v1"})
    assert acrobot.normalize_reward is False and acrobot.reward_scale == 0.01


# ------------------------------------------------------------------------- the command line
def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_fused_writes_every_file_of_the_run_directory(tmp_path):
    run_dir = tmp_path / "fused"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "a2c",
            "train",
            "--fused",
            "--env",
            "CartPole-v1",
            "--total-steps",
            "6400",
            "--n-envs",
            "64",
            "--n-steps",
            "5",
            "--fused-updates-per-call",
            "4",
            "--eval-every",
            "2560",
            "--log-every",
            "4",
            "--eval-episodes",
            "2",
            "--final-eval-episodes",
            "2",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"run directory: {run_dir}" in proc.stdout
    for name in ("config.toml", "metrics.csv", "evaluations.csv", "model.keras", "summary.json"):
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert (run_dir / "saved_model" / "saved_model.pb").is_file()

    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["fused"] is True and config["n_envs"] == 64 and config["fused_updates_per_call"] == 4
    assert config["fused_xla"] is False  # the CartPole preset's graph executor
    metrics = read_csv(run_dir / "metrics.csv")
    assert tuple(metrics[0].keys()) == METRIC_COLUMNS
    # 20 updates of 320 steps; calls of <= 4 updates that also end at each evaluation step;
    # a row every 4 updates (log_every), at each evaluation and at the end.
    assert [int(r["global_step"]) for r in metrics] == [1280, 2560, 3840, 5120, 6400]
    assert all(np.isfinite(float(metrics[-1][c])) for c in METRIC_COLUMNS if c.startswith("train/"))
    evaluations = read_csv(run_dir / "evaluations.csv")
    assert tuple(evaluations[0].keys()) == EVAL_COLUMNS
    assert [int(r["global_step"]) for r in evaluations] == [2560, 5120, 6400]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trainer"] == "fused" and summary["total_steps"] == 6400 and summary["traces"] == 1
    assert summary["executor"] == "graph"
    assert summary["compile_seconds"] > 0 and summary["eval_episodes"] == 2

    # `a2c evaluate` and the export read the fused run's model unchanged.
    from a2c.artifacts.loading import evaluate_path

    for path in (run_dir, run_dir / "saved_model"):
        result, info = evaluate_path(path, episodes=2)
        assert info["env_id"] == "CartPole-v1" and len(result.returns) == 2


def test_ports_accept_a_generator_as_key():
    """a2c.envs.tf_envs extension used by the fused loop: a tf.random.Generator in place of a
    key; the same seed gives the same episodes, and resets keep gymnasium's law."""
    env = ported_env("CartPole-v1")

    def trajectory(seed: int) -> np.ndarray:
        rng = tf.random.Generator.from_seed(seed)
        state, obs = env.reset(rng, 64)
        out = [obs.numpy()]
        for _ in range(30):
            step = env.step(state, tf.ones([64], tf.int32), rng)  # always push right: episodes end
            state = step.state
            out.append(step.obs.numpy())
        return np.stack(out)

    a, b, c = trajectory(4), trajectory(4), trajectory(5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.abs(a[0]) < 0.05)  # U[-0.05, 0.05) resets


def test_recent_episodes_window_keeps_the_newest_calls_covering_100():
    from a2c.run.progress import RecentEpisodes

    recent = RecentEpisodes(100)
    assert recent.return_mean() is None
    recent.add(0, 0.0, 0.0)  # a call in which no episode ended changes nothing
    assert recent.return_mean() is None
    recent.add(60, 60 * 10.0, 60 * 20.0)
    assert recent.return_mean() == 10.0 and recent.length_mean() == 20.0  # fewer than 100 so far: all
    recent.add(50, 50 * 30.0, 50 * 40.0)
    assert recent.return_mean() == pytest.approx((600 + 1500) / 110)  # 50 alone would be < 100
    recent.add(120, 120 * 50.0, 120 * 60.0)
    assert recent.return_mean() == 50.0 and recent.length_mean() == 60.0  # the newest call covers 100
    recent.add(30, 30 * 70.0, 30 * 80.0)
    assert recent.return_mean() == pytest.approx((6000 + 2100) / 150)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fused_cartpole_preset_is_solved(tmp_path, seed):
    """The whole preset (graph executor, 200k steps): greedy 100-episode mean >= 475."""
    cfg = make_fused_config(
        {"seed": seed, "progress": False, "eval_every": 0, "run_dir": str(tmp_path / f"fused{seed}")}
    )
    summary = train_fused(cfg, quiet=True).summary
    assert summary["executor"] == "graph" and summary["total_steps"] >= 200_000
    assert summary["eval_episodes"] == 100 and summary["eval_mean_return"] >= 475, summary["eval_mean_return"]
