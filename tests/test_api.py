"""The object API (a2c.api.agent.A2C): your own env, learn, predict, evaluate, save, load, continue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from a2c import A2C, Callback, StopOnReward
from a2c.common.errors import ConfigError, EnvError, ModelFileError

TINY = dict(eval_every=0, final_eval_episodes=0, quiet=True)


class Corridor(gym.Env):
    """Never registered anywhere: the observation names the rewarded action (one-hot over
    ``size`` positions); episodes last 10 steps (a time limit, so truncation), optimal return 10."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self.observation_space = spaces.Discrete(size)
        self.action_space = spaces.Discrete(size)
        self._target, self._t = 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._target, self._t = int(self.np_random.integers(self.size)), 0
        return self._target, {}

    def step(self, action):
        reward = float(int(action) == self._target)
        self._target, self._t = int(self.np_random.integers(self.size)), self._t + 1
        return self._target, reward, False, self._t >= 10, {}


class Pendulumish(gym.Env):
    """Box actions: reward is minus the squared distance of the action to the observation."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs, {}

    def step(self, action):
        reward = -float(np.sum((np.asarray(action) - self._obs) ** 2))
        self._obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs, reward, False, False, {}


def weights_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.model.get_weights(), b.model.get_weights(), strict=True))


def test_an_unregistered_env_class_trains_to_the_optimal_return(tmp_path):
    agent = A2C(
        Corridor,
        run_dir=tmp_path / "run",
        lr=3e-3,
        hidden_sizes=(32,),
        eval_every=0,
        final_eval_episodes=10,
        quiet=True,
    )
    assert agent.env_id == f"{__name__}:Corridor"  # importable: other processes can make it again
    agent.learn(6_000)
    result = agent.evaluate(episodes=20)
    assert result.mean >= 9.0 and result.std >= 0.0  # >= 90% of the optimal 10
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env_id"] == agent.env_id and summary["eval_mean_return"] >= 9.0
    assert (tmp_path / "run" / "model.keras").is_file() and (tmp_path / "run" / "saved_model").is_dir()


def test_two_learn_calls_equal_one_call_bit_for_bit(tmp_path):
    a = A2C("CartPole-v1", run_dir=tmp_path / "a", **TINY).learn(1_600)
    a.learn(1_600)
    b = A2C("CartPole-v1", run_dir=tmp_path / "b", **TINY).learn(3_200)
    assert a.num_timesteps == b.num_timesteps == 3_200
    assert weights_equal(a, b)
    assert [np.asarray(v).tobytes() for v in a._driver.trainer.optimizer.variables] == [
        np.asarray(v).tobytes() for v in b._driver.trainer.optimizer.variables
    ]
    rows = lambda d: [r.split(",")[:12] for r in (tmp_path / d / "metrics.csv").read_text().splitlines()]  # noqa: E731
    # The same training metrics; the first call also logged its last update (a session's end).
    assert [r for r in rows("a") if r[0] != "1600"] == rows("b")


def test_save_load_predicts_the_same_and_continues_exactly(tmp_path):
    agent = A2C("CartPole-v1", run_dir=tmp_path / "run", **TINY).learn(1_600)
    path = agent.save(tmp_path / "agent")
    assert path == tmp_path / "agent.zip" and path.is_file()
    loaded = A2C.load(path, run_dir=tmp_path / "loaded", quiet=True)
    obs = np.random.default_rng(0).uniform(-0.1, 0.1, (16, 4)).astype(np.float32)
    assert np.array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    assert loaded.num_timesteps == agent.num_timesteps == 1_600
    loaded.learn(800)
    agent.learn(800)
    assert weights_equal(loaded, agent)


def test_predict_takes_one_observation_or_a_batch_on_every_supported_space(tmp_path):
    discrete = A2C(Corridor, run_dir=tmp_path / "d", **TINY)
    action, state = discrete.predict(2)
    assert state is None and np.asarray(action).shape == () and 0 <= int(action) < 3
    actions, _ = discrete.predict(np.array([0, 1, 2]))
    assert actions.shape == (3,)
    box = A2C(Pendulumish, run_dir=tmp_path / "b", **TINY)
    action, _ = box.predict(np.zeros(2, np.float32), deterministic=False)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)  # clipped to the Box
    assert box.predict(np.zeros((5, 2), np.float32))[0].shape == (5, 2)
    with pytest.raises(ValueError, match=r"shape \(3,\) does not fit the observation space"):
        box.predict(np.zeros(3, np.float32))


def test_env_kwargs_reach_the_env_and_instances_factories_and_vector_envs_train(tmp_path):
    sized = A2C(Corridor, env_kwargs={"size": 5}, run_dir=tmp_path / "k", **TINY)
    assert sized.observation_space == spaces.Discrete(5) and sized.action_space == spaces.Discrete(5)
    assert "size = 5" in (tmp_path / "k" / "config.toml").read_text()
    instance = Corridor(4)
    A2C(instance, run_dir=tmp_path / "i", **TINY).learn(400)
    assert instance._t == 0  # the template itself is never stepped
    factory = A2C(lambda: Corridor(2), run_dir=tmp_path / "f", **TINY).learn(400)
    assert factory.env_id.startswith("a2c-local/")
    vec = gym.vector.SyncVectorEnv([lambda: Corridor(3)] * 4)
    vector = A2C(vec, run_dir=tmp_path / "v", **TINY).learn(400)
    assert vector.cfg.n_envs == 4 and vector.num_timesteps == 400


class Stopped(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_training_start(self, cfg, run_dir, model) -> None:
        super().on_training_start(cfg, run_dir, model)
        self.events.append("start")

    def on_update(self, update, global_step, metrics):
        assert {"policy_loss", "value_loss", "entropy"} <= set(metrics) and isinstance(metrics["entropy"], float)
        self.events.append("update")

    def on_evaluation(self, global_step, result):
        self.events.append("eval")

    def on_checkpoint(self, update, global_step) -> None:
        self.events.append("checkpoint")

    def on_training_end(self, summary) -> None:
        self.events.append(f"end {summary['total_steps']}")


def test_a_callback_stops_at_a_reward_threshold_and_the_model_scores_it(tmp_path):
    stop, seen = StopOnReward(9.0), Stopped()
    agent = A2C(
        Corridor,
        run_dir=tmp_path / "run",
        lr=3e-3,
        hidden_sizes=(32,),
        eval_every=800,
        eval_episodes=10,
        final_eval_episodes=10,
        quiet=True,
    )
    agent.learn(40_000, callback=[stop, seen])
    assert stop.reached_at is not None and stop.reached_at < 40_000
    assert agent.num_timesteps == stop.reached_at  # stopped there, cleanly: not an interruption
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # The final evaluation replays the periodic one's episodes (same seeds) with the same weights.
    assert summary["eval_mean_return"] >= 9.0 and summary["total_steps"] == stop.reached_at
    assert agent.evaluate(episodes=10).mean == summary["eval_mean_return"]
    assert seen.events[0] == "start" and "eval" in seen.events and "checkpoint" in seen.events
    assert seen.events[-1] == f"end {stop.reached_at}"
    assert seen.model is agent.model and seen.run_dir == tmp_path / "run"


class TupleActionEnv(Corridor):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))


class BrokenReset(Corridor):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._target  # no info dict: gymnasium's checker refuses it


class Unpicklable(Corridor):
    def __init__(self) -> None:
        super().__init__()
        self.lock = __import__("threading").Lock()


def failing_factory():
    raise RuntimeError("no such level")


@pytest.mark.parametrize(
    ("env", "error", "match"),
    [
        (TupleActionEnv, EnvError, r"action space Tuple\(Discrete\(2\), Discrete\(2\)\)"),
        (BrokenReset, EnvError, "fails gymnasium's check_env"),
        (failing_factory, EnvError, "RuntimeError: no such level"),
        (Unpicklable(), EnvError, "cannot be copied.*pass a factory"),
        (42, EnvError, "must be an id, a gymnasium.Env, a class or a function"),
    ],
)
def test_bad_environments_are_one_line_errors(tmp_path, env, error, match):
    with pytest.raises(error, match=match):
        A2C(env, run_dir=tmp_path / "run", **TINY)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_bad_config_and_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"learning_rate \(did you mean lr\?\)"):
        A2C("CartPole-v1", learning_rate=1e-3, **TINY)
    with pytest.raises(ValueError, match="total_timesteps must be a positive int"):
        A2C("CartPole-v1", run_dir=tmp_path / "r", **TINY).learn(0)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="is not a saved a2c agent"):
        A2C.load(junk)
    saved = A2C(Corridor, run_dir=tmp_path / "c", **TINY).save(tmp_path / "corridor")
    with pytest.raises(EnvError, match="does not fit the agent"):
        A2C.load(saved, env="CartPole-v1", run_dir=tmp_path / "wrong", quiet=True)


def test_make_config_with_an_env_object_points_to_the_object_api():
    from a2c import make_config, train

    assert callable(train)  # the function, not the module
    with pytest.raises(ConfigError, match=r"pass it to A2C\(env\)"):
        make_config({"env_id": Corridor()})


def test_importing_a2c_and_its_api_names_loads_no_tensorflow():
    code = "import sys, a2c; a2c.A2C; a2c.Callback; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Resolving A2C imports its module (and TensorFlow with it); a bare `import a2c` does not.
    bare = subprocess.run(
        [sys.executable, "-c", "import sys, a2c; print('tensorflow' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert bare.strip() == "False" and out.strip() in ("True", "False")


def test_cli_trains_a_callable_entry_point_with_env_kwargs_and_extends_a_finished_run(tmp_path):
    from a2c.cli.main import main

    run = tmp_path / "run"
    common = ["--eval-every", "0", "--final-eval-episodes", "0", "--no-progress"]
    args = ["train", "--env", f"{__name__}:Corridor", "--env-kwargs", '{"size": 4}', "--total-steps", "400"]
    assert main([*args, *common, "--run-dir", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["total_steps"] == 400
    assert main(["train", "--resume", str(run), "--total-steps", "400"]) == 2  # not more than done
    assert main(["train", "--resume", str(run)]) == 2  # finished: says to pass --total-steps
    assert main(["train", "--resume", str(run), "--total-steps", "800"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["total_steps"] == 800 and summary["resumed_at_updates"] == [400 // 40]
    assert "total_steps = 800" in (run / "config.toml").read_text()
    assert Path(run / "model.keras").is_file()
