"""Atari (a2c.envs.atari, the nature_cnn trunk, rmsprop_tf): real ALE games, small budgets.

Breakout is used throughout: five lives, and a random game lasts ~200 agent steps.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from a2c.cli.main import main  # noqa: E402
from a2c.config.resolve import make_config  # noqa: E402
from a2c.envs.atari import (
    FRAME_SKIP,
    NOOP,
    NOOP_MAX,
    REPEAT_ACTION_PROBABILITY,
    GameEpisodes,
    NativeGames,
    make_atari_env,
    make_atari_vec_env,
    register_atari,
)  # noqa: E402
from a2c.envs.make import make_env, make_vec_env  # noqa: E402
from a2c.envs.spaces import observation_spec

GAME = "ALE/Breakout-v5"


class ActionLog(gym.Wrapper):
    """Records what reaches the preprocessed game: every action and raw reward."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[int] = []
        self.rewards: list[float] = []

    def step(self, action):
        step = self.env.step(action)
        self.actions.append(int(action))
        self.rewards.append(float(step[1]))
        return step


def preprocessed(seed: int) -> gym.Env:
    register_atari()
    env = gym.make(GAME, frameskip=1, repeat_action_probability=REPEAT_ACTION_PROBABILITY)
    return gym.wrappers.AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, terminal_on_life_loss=False)


def test_training_env_shapes_dtypes_and_clipped_rewards():
    env = make_atari_env(GAME, clip_rewards=True)
    try:
        assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        assert not obs[:3].any() and obs[3].any()  # zero padding, then the first frame
        rng = np.random.default_rng(0)
        rewards = []
        for _ in range(150):
            obs, r, terminated, truncated, info = env.step(int(rng.integers(4)))
            rewards.append(r)
            if terminated or truncated:
                obs, _ = env.reset()
        assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
    finally:
        env.close()
    assert observation_spec(env.observation_space).dtype == "uint8"


def test_a_lost_life_ends_the_episode_but_not_the_game_and_the_game_return_is_whole():
    """Play one game through GameEpisodes (resetting at each lost life, as the vector
    env does); replay the very actions that reached the game on a fresh copy without
    life-loss episodes: same score, same end."""
    log = ActionLog(preprocessed(7))
    env = GameEpisodes(log)
    rng = np.random.default_rng(1)
    env.reset(seed=7)
    life_ends, steps, game = 0, 0, None
    while game is None:
        _, _, terminated, truncated, info = env.step(int(rng.integers(4)))
        steps += 1
        if info["game_over"]:
            game = info["episode"]
        elif terminated:
            life_ends += 1
            _, reset_info = env.reset()  # a no-op step (and FIRE): the same game goes on
            assert "episode" not in reset_info
        assert steps < 20_000
    env.close()
    assert life_ends == 4  # five lives: four episodes end at a lost life, the fifth with the game
    assert game["r"] == sum(log.rewards) and game["l"] == len(log.actions)
    reference = preprocessed(7)
    reference.reset(seed=7)
    total, over = 0.0, False
    for action in log.actions:
        assert not over, "the reference game ended earlier"
        _, r, terminated, truncated, _ = reference.step(action)
        total, over = total + r, terminated or truncated
    reference.close()
    assert over and total == game["r"]


def test_gymnasium_vector_env_reports_whole_games_through_the_next_step_autoreset():
    """Each game is reported once, after five terminations (four lost lives, then the game
    over), with every agent step of the game counted: the vector env's steps, plus one
    extra (a no-op before the FIRE) in each of the four reset steps after a lost life,
    plus the first game's opening FIRE, made inside ``env.reset``."""
    env = make_atari_vec_env(GAME, 2, "gymnasium")
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    ends = np.zeros(2, int)  # terminations (lives and games) since the last game
    since = np.zeros(2, int)  # vector steps since the last game ended
    first = np.ones(2, bool)
    games = 0
    try:
        for _ in range(700):
            _, _, terminated, truncated, infos = env.step(rng.integers(4, size=2))
            since += 1
            ends += terminated | truncated
            for i in np.flatnonzero(infos.get("_episode", np.zeros(2, bool))):
                assert ends[i] == 5
                assert int(infos["episode"]["l"][i]) == since[i] + 4 + first[i]
                ends[i], since[i], first[i] = 0, 0, False
                games += 1
    finally:
        env.close()
    assert games >= 2


def test_native_vector_env_is_the_default_with_the_gymnasium_stacks_spaces():
    native, stack = make_vec_env(GAME, 2), make_vec_env(GAME, 2, "gymnasium")
    try:
        assert isinstance(native, NativeGames) and isinstance(stack, gym.vector.SyncVectorEnv)
        assert (
            native.single_observation_space
            == stack.single_observation_space
            == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
        )
        assert native.single_action_space == stack.single_action_space
        obs, _ = native.reset(seed=0)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8 and obs[:, -1].any()
    finally:
        native.close()
        stack.close()


def test_native_frames_equal_the_gymnasium_stacks():
    """Same game, no random no-ops, same actions: the native env's settings give the very
    frames of the wrapper stack (skip 4, max-pooled, resized, grey, stacked, zero-padded)."""
    from ale_py.vector_env import AtariVectorEnv

    from a2c.envs.atari import ALE_SETTINGS

    native = AtariVectorEnv("breakout", 1, num_threads=1, use_fire_reset=False, **{**ALE_SETTINGS, "noop_max": 0})
    register_atari()
    stack = gym.make(GAME, frameskip=1, repeat_action_probability=REPEAT_ACTION_PROBABILITY)
    stack = gym.wrappers.AtariPreprocessing(stack, noop_max=0, frame_skip=FRAME_SKIP, terminal_on_life_loss=False)
    stack = gym.wrappers.FrameStackObservation(stack, 4, padding_type="zero")
    try:
        frames, _ = native.reset(seed=0)
        expected, _ = stack.reset(seed=0)
        assert np.array_equal(frames[0], expected)
        for action in (1, 3, 3, 2, 2, 0, 1, 3, 2, 2):
            frames, *_ = native.step(np.array([action]))
            expected, *_ = stack.step(action)
            assert np.array_equal(frames[0], expected)
    finally:
        native.close()
        stack.close()


@pytest.mark.parametrize("game, lives", [(GAME, 5), ("ALE/SpaceInvaders-v5", 3)])
def test_native_env_ends_an_episode_at_each_lost_life_and_reports_whole_raw_games(game, lives):
    """The training env (clipped) and a raw copy, same seeds and actions: per game, one
    termination per lost life (the game goes on: lives only go down), the game's return
    is the sum of the raw rewards, its length the agent steps since it began (the step
    after a game over is the next game's reset step)."""
    train, raw = make_atari_vec_env(game, 2), make_atari_vec_env(game, 2, clip_rewards=False)
    _, info = train.reset(seed=5)
    raw.reset(seed=5)
    rng = np.random.default_rng(0)
    prev_lives = info["lives"].copy()
    ends, lost, steps = np.zeros(2, int), np.zeros(2, int), np.zeros(2, int)
    rewards, clipped = np.zeros(2), np.zeros(2)
    first = np.ones(2, bool)
    games = []
    try:
        while not (~first).all():
            actions = rng.integers(train.single_action_space.n, size=2)
            obs, r, terminated, truncated, info = train.step(actions)
            raw_obs, raw_r, *_, raw_info = raw.step(actions)
            assert np.array_equal(obs, raw_obs) and np.array_equal(r, np.clip(raw_r, -1, 1))
            assert set(np.unique(r)) <= {-1.0, 0.0, 1.0}
            assert not truncated.any() and steps.max() < 5000
            steps += 1
            ends += terminated
            lost += info["lives"] < prev_lives
            prev_lives = info["lives"].copy()
            rewards += raw_r
            clipped += r
            for i in np.flatnonzero(info.get("_episode", np.zeros(2, bool))):
                assert raw_info["_episode"][i] and raw_info["episode"]["r"][i] == info["episode"]["r"][i]
                assert ends[i] == lost[i] == lives
                assert info["episode"]["r"][i] == rewards[i]
                assert info["episode"]["l"][i] == steps[i] - (0 if first[i] else 1)
                games.append((rewards[i], clipped[i]))
                ends[i] = lost[i] = steps[i] = 0
                rewards[i] = clipped[i] = 0.0
                first[i] = False
    finally:
        train.close()
        raw.close()
    if game != GAME:  # Space Invaders scores 5 to 30 a hit: the return is not the clipped one
        assert all(r > c for r, c in games)


def test_native_env_presses_fire_after_a_lost_life():
    """Breakout waits for FIRE after a lost life; an agent that never fires still plays its
    five lives, since the episode's reset step (its action ignored) presses FIRE."""
    env = make_atari_vec_env(GAME, 1)
    env.reset(seed=0)
    ends = 0
    try:
        for _ in range(1000):
            _, _, terminated, _, info = env.step(np.array([NOOP]))
            ends += int(terminated[0])
            if "_episode" in info:
                break
    finally:
        env.close()
    assert ends == 5 and info["_episode"][0]


def test_env_that_was_reset_underneath_starts_a_new_game():
    """After a checkpoint restore the emulator is fresh: the tally must not continue the old game."""
    env = GameEpisodes(preprocessed(0))
    env.reset(seed=0)
    for _ in range(20):
        env.step(3)
    assert env.game_length > 20
    env.env.reset(seed=5)  # behind GameEpisodes' back, as a rebuilt env
    env.game_over = False
    env.reset()
    assert env.game_length == 1  # only the FIRE of the new game
    env.close()


def test_rollout_buffer_keeps_uint8_frames():
    from a2c.agent.model import model_for
    from a2c.trainers.rollout import RolloutCollector

    cfg = make_config({"env_id": GAME, "n_envs": 2, "n_steps": 3, "hidden_sizes": (16,)})
    env = make_vec_env(GAME, 2)
    model = model_for(cfg, env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, model, 3, seed=0)
    try:
        batch, _ = collector.collect()
    finally:
        collector.close()
    assert batch.obs.dtype == np.uint8 and batch.obs.shape == (4, 2, 4, 84, 84)
    assert batch.obs.nbytes == 4 * 2 * 4 * 84 * 84  # one byte a pixel, not four
    assert model.inputs[0].dtype == "uint8"


def test_tiny_cnn_trains_on_a_real_game_and_its_export_takes_uint8_frames(tmp_path):
    import tensorflow as tf

    from a2c.artifacts.loading import evaluate_path

    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--env",
            GAME,
            "--n-envs",
            "4",
            "--total-steps",
            "320",
            "--hidden-sizes",
            "32",
            "--eval-every",
            "0",
            "--final-eval-episodes",
            "0",
            "--log-every",
            "4",
            "--run-dir",
            str(run),
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["total_steps"] == 320
    from atari_results import game_rows, plot_against_zoo, run_record, tables  # make results-atari's parts

    record = run_record(run, GAME, 0, 320, "finished")
    randoms = {GAME: {"mean": 1.0, "std": 0.5}}
    assert "| ALE/Breakout-v5 s0 | 320 | 320 | finished |" in tables([record], game_rows([record], randoms), randoms)
    assert plot_against_zoo([run], tmp_path, randoms)["ALE/Breakout-v5"].stat().st_size > 0
    loaded = tf.saved_model.load(str(run / "saved_model"))
    spec = loaded.signatures["serving_default"].structured_input_signature[1]
    (obs_spec,) = spec.values()
    assert obs_spec.dtype == tf.uint8 and tuple(obs_spec.shape[1:]) == (4, 84, 84)
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    import keras

    model = keras.saving.load_model(run / "model.keras")
    expected = np.argmax(model(frames)["probs"].numpy(), axis=1)
    assert np.array_equal(loaded.greedy_action(tf.constant(frames)).numpy(), expected)
    result, gif = evaluate_path(run / "saved_model", GAME, episodes=1, gif=tmp_path / "game.gif")
    assert result.lengths[0] > 0 and (tmp_path / "game.gif").stat().st_size > 0


def test_unknown_game_is_refused_in_one_line(capsys):
    assert main(["train", "--env", "ALE/NoSuchGame-v5", "--total-steps", "80"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NoSuchGame" in err[0]


def test_nature_cnn_on_feature_vectors_is_refused_in_one_line(capsys):
    assert main(["train", "--env", "CartPole-v1", "--trunk", "nature_cnn", "--total-steps", "80"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nature_cnn" in err[0] and "(4,)" in err[0]


def test_atari_presets_are_the_zoos():
    for game in ("ALE/Pong-v5", "ALE/Breakout-v5", "ALE/Seaquest-v5", "ALE/SpaceInvaders-v5", "PongNoFrameskip-v4"):
        cfg = make_config({"env_id": game})
        assert (cfg.n_envs, cfg.n_steps, cfg.lr, cfg.ent_coef, cfg.vf_coef, cfg.max_grad_norm) == (
            16,
            5,
            7e-4,
            0.01,
            0.25,
            0.5,
        )
        assert (cfg.optimizer, cfg.optimizer_eps, cfg.rms_rho, cfg.trunk, cfg.hidden_sizes) == (
            "rmsprop_tf",
            1e-5,
            0.99,
            "nature_cnn",
            (512,),
        )
        assert cfg.eval_policy == "sampled" and cfg.precision == "bfloat16"


def test_noframeskip_v4_ids_are_atari_games_too():
    """ale-py registers <Game>NoFrameskip-v4 (the zoo's ids): the same preprocessing and native env."""
    env, _ = make_env("BreakoutNoFrameskip-v4")
    try:
        assert env.observation_space.shape == (4, 84, 84) and env.action_space.n == 4
    finally:
        env.close()
    vec = make_vec_env("BreakoutNoFrameskip-v4", 2)
    try:
        assert isinstance(vec, NativeGames) and vec.single_observation_space.shape == (4, 84, 84)
    finally:
        vec.close()


def test_a_run_evaluates_whole_games_sampled_with_the_greedy_score_beside(tmp_path):
    """The Atari settings' eval_policy: the final evaluation samples, seeded per game, and plays greedy
    on the same seeds beside it."""
    run = tmp_path / "run"
    args = ["train", "--env", GAME, "--n-envs", "2", "--total-steps", "20", "--hidden-sizes", "8"]
    args += ["--eval-every", "0", "--final-eval-episodes", "1", "--run-dir", str(run), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["eval_policy"] == "sampled" and summary["eval_episodes"] == 1
    assert summary["eval_mean_return"] >= 0 and summary["eval_greedy_mean_return"] >= 0
    rows = (run / "evaluations.csv").read_text().splitlines()
    assert rows[0].endswith("eval/greedy_mean_return,eval/greedy_std_return") and len(rows) == 2


def test_missing_extra_is_named(monkeypatch, capsys):
    """Without ale-py the one-line error names the extra."""
    monkeypatch.setitem(sys.modules, "ale_py", None)  # `import ale_py` now fails as if it were not installed
    assert main(["train", "--env", "ALE/Pong-v5", "--total-steps", "80"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a2c[atari]" in err[0]


@pytest.mark.parametrize("vector", ["ale", "gymnasium"])
def test_interrupted_atari_run_resumes_on_its_own_vector_env(tmp_path, vector, capsys):
    """The native env's emulators cannot be saved: the resumed run starts new games. A
    gymnasium-stack run whose config.toml predates ``atari_vector`` resumes on that stack."""
    from a2c.run.signals import TrainingInterrupted
    from a2c.run.train import resume, train

    run = tmp_path / vector
    cfg = make_config(
        {
            "env_id": GAME,
            "n_envs": 2,
            "n_steps": 5,
            "total_steps": 30,
            "hidden_sizes": (16,),
            "eval_every": 0,
            "final_eval_episodes": 0,
            "checkpoint_every": 1,
            "progress": False,
            "atari_vector": vector,
            "run_dir": str(run),
        }
    )

    def stop(update: int, step: int) -> None:
        if update == 2:
            raise KeyboardInterrupt("test stop")

    with pytest.raises(TrainingInterrupted):
        train(cfg, quiet=True, callback=stop)
    if vector == "gymnasium":  # as written before the fields existed: float32 then
        toml = run / "config.toml"
        lines = toml.read_text().splitlines(keepends=True)
        toml.write_text("".join(line for line in lines if not line.startswith(("atari_vector", "precision"))))
    summary = resume(run).summary
    assert summary["total_steps"] == 30 and summary["resumed_at_updates"] == [2]
    assert "state cannot be saved" in capsys.readouterr().err
    model = keras.saving.load_model(run / "model.keras")
    assert model.get_layer("conv_0").compute_dtype == ("bfloat16" if vector == "ale" else "float32")


def test_results_atari_judges_targets_on_finished_seeds_against_random_play_on_the_same_seeds():
    from atari_results import game_rows, random_scores

    def record(seed: int, mean: float | None) -> dict:
        return {"env_id": "ALE/Seaquest-v5", "seed": seed, "budget": 1_000_000, "eval_mean": mean}

    randoms = {"ALE/Seaquest-v5": {"mean": 50.0, "std": 10.0}}
    (row,) = game_rows([record(0, 300.0), record(1, None)], randoms)
    assert row["met"] is None and row["target_level"] == 200.0  # 4x random; one seed still training
    (row,) = game_rows([record(0, 300.0), record(1, 150.0)], randoms)
    assert row["met"] is True and row["times_random"] == 4.5
    (row,) = game_rows([record(0, 100.0), record(1, 150.0)], randoms)
    assert row["met"] is False
    # Each precision is judged on its own seeds, against the same random play and target.
    bf16 = [{**record(0, 400.0), "precision": "bfloat16"}, {**record(1, None), "precision": "bfloat16"}]
    f32, b16 = game_rows([record(0, 300.0), record(1, 150.0), *bf16], randoms)
    assert (f32["game"], f32["met"]) == ("ALE/Seaquest-v5", True)
    assert (b16["game"], b16["met"], b16["finished"]) == ("ALE/Seaquest-v5 (bfloat16)", None, 1)
    assert b16["target_level"] == 200.0
    # The random policy is seeded per game: the same seeds give the same games.
    assert random_scores(GAME, 1, 1_000_000) == random_scores(GAME, 1, 1_000_000)
