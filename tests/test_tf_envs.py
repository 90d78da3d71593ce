"""The TensorFlow classic-control ports against gymnasium itself.

Comparisons run the ports in float64 (gymnasium's physics dtype). Reset distributions
are random on both sides, so dynamics are compared by copying gymnasium's initial
state into the port at every episode start; reset laws are tested separately.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium.spaces import Discrete, MultiDiscrete
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from a2c.envs.tf_envs import PORTED_ENVS, get_tf_env, make_key, split_key
from a2c.envs.tf_envs.vector import TFGymEnv, TFVectorEnv

ENV_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]
CONTINUOUS_IDS = ["Pendulum-v1", "MountainCarContinuous-v0"]  # Box actions

# Reset support of the physics state, per variable: gymnasium's reset laws.
RESET_BOUNDS = {
    "CartPole-v1": ([-0.05] * 4, [0.05] * 4),
    "Acrobot-v1": ([-0.1] * 4, [0.1] * 4),
    "MountainCar-v0": ([-0.6, 0.0], [-0.4, 0.0]),
}


def _in_reset_support(env_id: str, physics: np.ndarray, tol: float = 0.0) -> bool:
    """Whether a state (or a float32-rounded observation, with ``tol``) is a fresh reset."""
    low, high = RESET_BOUNDS[env_id]
    return bool(np.all(physics >= np.array(low) - tol) and np.all(physics <= np.array(high) + tol))


def _skilled_action(env_id: str, obs: np.ndarray) -> int:
    """A simple controller, so episodes also reach the time limit or the goal."""
    if env_id == "CartPole-v1":  # balances for 500 steps: truncation
        return int(obs[2] + 0.5 * obs[3] + 0.01 * obs[0] + 0.1 * obs[1] > 0)
    if env_id == "Acrobot-v1":  # pumps energy through the elbow: termination in ~100 steps
        return 2 if obs[5] > 0 else 0
    return 2 if obs[1] > 0 else 0  # MountainCar: rides the velocity, reaches the flag


def _gym_physics(env: gym.Env) -> np.ndarray:
    return np.asarray(env.unwrapped.state, dtype=np.float64)


def _compare_with_gymnasium(
    env_id: str, n_envs: int, n_steps: int, seed: int, free_steps: int | None = None, **overrides
) -> dict[str, int]:
    """Step gymnasium and the float64 port side by side; return event counts.

    The port's state is copied from gymnasium at every episode start and then runs
    free. CartPole balanced upright and an energetic Acrobot are chaotic: errors grow
    ~e^0.078 per step for the upright pole, ~1e17 over 500 steps, so 1-ulp differences
    (TF's graph optimiser reassociates constant arithmetic) eventually reach O(1). With
    ``free_steps`` set, an episode runs free for that many steps and is then checked one
    step at a time from gymnasium's physics (the step counter stays the port's own).
    """
    port = get_tf_env(env_id, dtype=tf.float64, **overrides)
    make_kwargs = {"max_episode_steps": overrides.get("max_episode_steps", port.max_episode_steps)}
    envs = [gym.make(env_id, **make_kwargs) for _ in range(n_envs)]
    if "book_or_nips" in overrides:
        for env in envs:
            env.unwrapped.book_or_nips = overrides["book_or_nips"]
    gym_obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    physics = np.stack([_gym_physics(env) for env in envs])
    steps = np.zeros(n_envs, np.int32)

    @tf.function
    def step(physics, steps, actions, key):
        """One port step from gymnasium-layout arrays, in a single graph call."""
        res = port.step(port.state_from_physics(physics, steps), actions, key)
        return res, port.physics_of(res.state)

    rng = np.random.default_rng(seed)
    key = make_key(seed)
    counts = {"terminated": 0, "truncated": 0, "both": 0}

    for t in range(n_steps):
        # Even envs follow the controller (with 10% random actions), odd ones act randomly.
        skilled = (np.arange(n_envs) % 2 == 0) & (rng.random(n_envs) > 0.1)
        actions = np.array(
            [_skilled_action(env_id, o) if s else int(rng.integers(port.n_actions)) for o, s in zip(gym_obs, skilled)]
        )
        key, step_key = split_key(key)
        res, res_physics = step(physics, steps, tf.constant(actions, tf.int32), step_key)
        results = [env.step(int(a)) for env, a in zip(envs, actions)]
        gym_obs = np.stack([r[0] for r in results])
        gym_reward = np.array([r[1] for r in results])
        gym_term = np.array([r[2] for r in results])
        gym_trunc = np.array([r[3] for r in results])
        done = gym_term | gym_trunc

        where = f"at t={t}"
        np.testing.assert_array_equal(res.terminated.numpy(), gym_term, err_msg=where)
        np.testing.assert_array_equal(res.truncated.numpy(), gym_trunc, err_msg=where)
        np.testing.assert_array_equal(res.reward.numpy(), gym_reward, err_msg=where)
        final_obs = res.final_obs.numpy()
        # Gymnasium rounds observations to float32; the float64 port agrees to that precision.
        np.testing.assert_allclose(final_obs, gym_obs, rtol=1e-6, atol=1e-8, err_msg=where)
        assert final_obs.dtype == np.float64 and res.obs.dtype == tf.float64

        new_physics = res_physics.numpy()
        new_steps = res.state.steps.numpy()
        obs = res.obs.numpy()
        # Envs still running: the port's float64 state tracks gymnasium's float64 state tightly.
        running = ~done
        gym_state = np.stack([_gym_physics(env) for env in envs])
        np.testing.assert_allclose(new_physics[running], gym_state[running], rtol=1e-9, atol=1e-11)
        np.testing.assert_array_equal(obs[running], final_obs[running])
        np.testing.assert_array_equal(new_steps[running], steps[running] + 1)
        # Ended envs: same-step autoreset to a fresh episode drawn from the reset law.
        np.testing.assert_array_equal(new_steps[done], 0)
        for i in np.flatnonzero(done):
            assert _in_reset_support(env_id, new_physics[i]), new_physics[i]
            assert not np.array_equal(obs[i], final_obs[i])  # obs already starts the next episode
            gym_obs[i] = envs[i].reset()[0]
            new_physics[i] = _gym_physics(envs[i])  # copy gymnasium's new episode into the port

        if free_steps is not None:
            resync = running & (new_steps >= free_steps)
            new_physics[resync] = gym_state[resync]
        physics, steps = new_physics, new_steps
        counts["terminated"] += int(gym_term.sum())
        counts["truncated"] += int(gym_trunc.sum())
        counts["both"] += int((gym_term & gym_trunc).sum())
    return counts


@pytest.mark.parametrize(
    ("env_id", "n_steps", "free_steps", "overrides"),
    [
        # Random CartPole episodes are short; a 50-step limit adds truncations.
        ("CartPole-v1", 200, None, {"max_episode_steps": 50}),
        # The real 500-step limit, reached by a balancing controller (chaotic: see helper).
        ("CartPole-v1", 520, 100, {}),
        ("Acrobot-v1", 520, 100, {}),
        ("Acrobot-v1", 260, 100, {"book_or_nips": "nips", "max_episode_steps": 250}),
        ("MountainCar-v0", 420, None, {}),
    ],
    ids=["cartpole-limit50", "cartpole-limit500", "acrobot", "acrobot-nips", "mountaincar"],
)
def test_step_equivalence_with_gymnasium(env_id: str, n_steps: int, free_steps: int | None, overrides: dict) -> None:
    counts = _compare_with_gymnasium(env_id, 6, n_steps, seed=0, free_steps=free_steps, **overrides)
    # Both endings, including the time limit (500 / 500 / 200 or the override), were exercised.
    assert counts["terminated"] > 0 and counts["truncated"] > 0, counts


@pytest.mark.parametrize(
    ("env_id", "physics"),
    [("CartPole-v1", [2.39, 2.0, 0.0, 0.0]), ("MountainCar-v0", [0.49, 0.05])],
)
def test_terminated_and_truncated_on_the_same_step(env_id: str, physics: list[float]) -> None:
    """TimeLimit sets truncated at the limit even when the env also terminates."""
    port = get_tf_env(env_id, dtype=tf.float64)
    env = gym.make(env_id)
    env.reset(seed=0)
    env.unwrapped.state = np.array(physics)
    env._elapsed_steps = port.max_episode_steps - 1  # the outermost wrapper is TimeLimit
    gym_obs, gym_reward, gym_term, gym_trunc, _ = env.step(2 if env_id == "MountainCar-v0" else 1)
    assert gym_term and gym_trunc

    state = port.state_from_physics([physics], [port.max_episode_steps - 1])
    res = port.step(state, tf.constant([port.n_actions - 1]), make_key(1))
    assert bool(res.terminated[0]) and bool(res.truncated[0])
    assert float(res.reward[0]) == gym_reward
    np.testing.assert_allclose(res.final_obs.numpy()[0], gym_obs, rtol=1e-6)
    assert int(res.state.steps[0]) == 0
    assert _in_reset_support(env_id, port.physics_of(res.state).numpy()[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_distribution(env_id: str) -> None:
    low, high = (np.array(b) for b in RESET_BOUNDS[env_id])
    port64 = get_tf_env(env_id, dtype=tf.float64)
    state, obs = port64.reset(make_key(5), 4096)
    physics = port64.physics_of(state).numpy()
    assert physics.shape == (4096, port64.n_physics) and obs.shape == (4096, port64.obs_dim)
    assert _in_reset_support(env_id, physics)
    spread = high - low
    np.testing.assert_allclose(physics.min(axis=0), low, atol=0.01 * spread.max())
    np.testing.assert_allclose(physics.max(axis=0), high, atol=0.01 * spread.max())
    np.testing.assert_allclose(physics.mean(axis=0), (low + high) / 2, atol=0.03 * spread.max())
    np.testing.assert_array_equal(state.steps.numpy(), 0)
    if env_id == "Acrobot-v1":  # gymnasium stores the reset state as float32
        np.testing.assert_array_equal(physics, physics.astype(np.float32))
    # Gymnasium's own resets land in the same support.
    env = gym.make(env_id)
    for seed in range(20):
        env.reset(seed=seed)
        assert _in_reset_support(env_id, _gym_physics(env))

    port32 = PORTED_ENVS[env_id]
    state32, obs32 = port32.reset(make_key(5), 16)
    assert port32.dtype == tf.float32 and obs32.dtype == tf.float32
    assert state32.steps.dtype == tf.int32
    assert obs32.shape == (16, port32.obs_dim)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_xla_while_loop_rollout(env_id: str) -> None:
    n_envs, n_steps, limit = 1024, 100, 50
    env = get_tf_env(env_id, max_episode_steps=limit)

    @tf.function(jit_compile=True)
    def rollout(key: tf.Tensor):
        """100 random steps; also returns the first step's inputs/outputs to check physics."""
        reset_key, loop_key = tf.unstack(split_key(key))
        init_state, obs = env.reset(reset_key, n_envs)

        def body(t, state, obs, key, n_done, n_bad, first_action, first_final_obs):
            action_key, step_key, key = tf.unstack(split_key(key, 3))
            action = tf.random.stateless_uniform([n_envs], action_key, 0, env.n_actions, dtype=tf.int32)
            res = env.step(state, action, step_key)
            n_done += tf.reduce_sum(tf.cast(res.terminated | res.truncated, tf.int32))
            finite = tf.reduce_all(tf.math.is_finite(res.obs), axis=1) & tf.reduce_all(
                tf.math.is_finite(res.final_obs), axis=1
            )
            n_bad += tf.reduce_sum(tf.cast(~finite, tf.int32))
            first_action = tf.where(t == 0, action, first_action)
            first_final_obs = tf.where(t == 0, res.final_obs, first_final_obs)
            return t + 1, res.state, res.obs, key, n_done, n_bad, first_action, first_final_obs

        no_action = tf.zeros([n_envs], tf.int32)
        carry = (0, init_state, obs, loop_key, 0, 0, no_action, tf.zeros_like(obs))
        _, state, obs, _, n_done, n_bad, first_action, first_final_obs = tf.while_loop(
            lambda t, *_: t < n_steps, body, carry
        )
        return state, obs, n_done, n_bad, (init_state, first_action, first_final_obs)

    state, obs, n_done, n_bad, first = rollout(make_key(11))
    assert obs.shape == (n_envs, env.obs_dim) and obs.dtype == tf.float32
    assert all(field.shape == (n_envs,) for field in state)
    assert int(n_bad) == 0
    assert int(n_done) >= n_envs  # every env hit the 50-step limit at least once
    assert 0 <= int(tf.reduce_min(state.steps)) and int(tf.reduce_max(state.steps)) < limit
    # Determinism under XLA: the same key replays the same rollout exactly.
    _, obs_again, n_done_again, _, _ = rollout(make_key(11))
    np.testing.assert_array_equal(obs.numpy(), obs_again.numpy())
    assert int(n_done) == int(n_done_again)
    # The compiled physics agrees with eager execution (final_obs does not depend on RNG).
    init_state, first_action, first_final_obs = first
    eager = env.step(init_state, first_action, make_key(4))
    np.testing.assert_allclose(first_final_obs, eager.final_obs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_key_same_trajectory(env_id: str) -> None:
    env = get_tf_env(env_id, max_episode_steps=15)
    step = tf.function(env.step)

    def trajectory(seed: int) -> np.ndarray:
        key = make_key(seed)
        key, reset_key = split_key(key)
        state, obs = env.reset(reset_key, 32)
        out = [obs.numpy()]
        for _ in range(40):
            key, action_key, step_key = split_key(key, 3)
            action = tf.random.stateless_uniform([32], action_key, 0, env.n_actions, dtype=tf.int32)
            res = step(state, action, step_key)
            state = res.state
            out += [res.obs.numpy(), res.final_obs.numpy()]
        return np.stack(out)

    first = trajectory(1)
    np.testing.assert_array_equal(first, trajectory(1))
    assert not np.array_equal(first, trajectory(2))
    # int32 keys work too.
    state, _ = env.reset(tf.constant([1, 2], tf.int32), 4)
    res = step(state, tf.zeros([4], tf.int32), tf.constant([3, 4], tf.int32))
    assert res.obs.shape == (4, env.obs_dim)


def test_acrobot_torque_noise_is_drawn_from_the_key() -> None:
    state, _ = get_tf_env("Acrobot-v1").reset(make_key(0), 8)
    actions = tf.fill([8], 2)
    quiet = get_tf_env("Acrobot-v1")  # gymnasium's default: no noise, the key only seeds resets
    np.testing.assert_array_equal(
        quiet.step(state, actions, make_key(1)).final_obs,
        quiet.step(state, actions, make_key(2)).final_obs,
    )
    noisy = get_tf_env("Acrobot-v1", torque_noise_max=0.5)
    first = noisy.step(state, actions, make_key(1)).final_obs.numpy()
    np.testing.assert_array_equal(first, noisy.step(state, actions, make_key(1)).final_obs)
    assert not np.array_equal(first, noisy.step(state, actions, make_key(2)).final_obs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_env_wrapper_passes_env_checker(env_id: str) -> None:
    env = TFGymEnv(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # CartPole's velocity bounds are infinite in gymnasium too; nothing else may warn.
    unexpected = [str(w.message) for w in caught if "infinity" not in str(w.message)]
    assert unexpected == []
    assert env.observation_space == gym.make(env_id).observation_space
    assert env.action_space == gym.make(env_id).action_space


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_wrapper_spaces_and_seeding(env_id: str) -> None:
    venv = TFVectorEnv(env_id, num_envs=3)
    reference = gym.make(env_id)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.single_observation_space == reference.observation_space
    assert venv.observation_space == batch_space(reference.observation_space, 3)
    assert venv.single_action_space == Discrete(reference.action_space.n)
    assert isinstance(venv.action_space, MultiDiscrete)
    assert venv.action_space == batch_space(reference.action_space, 3)

    def run(seed: int) -> list[np.ndarray]:
        obs, _ = venv.reset(seed=seed)
        venv.action_space.seed(seed)
        out = [obs]
        for _ in range(5):
            obs, reward, term, trunc, _ = venv.step(venv.action_space.sample())
            assert obs.dtype == np.float32 and reward.dtype == np.float64 and term.dtype == np.bool_
            out += [obs, reward]
        return out

    first = run(3)
    assert venv.observation_space.contains(first[0])
    assert all(np.array_equal(a, b) for a, b in zip(first, run(3)))
    assert not np.array_equal(first[0], run(4)[0])


def test_vector_wrapper_final_obs_on_autoreset() -> None:
    """Infos follow SyncVectorEnv's SAME_STEP layout and hold the true last observation."""
    n_envs = 4
    port = get_tf_env("CartPole-v1", dtype=tf.float64, max_episode_steps=30)
    venv = TFVectorEnv(port, num_envs=n_envs)
    checkers = [gym.make("CartPole-v1").unwrapped for _ in range(n_envs)]
    for env in checkers:
        env.reset(seed=0)
    obs, _ = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    n_ended = 0
    for _ in range(120):
        physics = port.physics_of(venv.state).numpy()
        actions = rng.integers(0, 2, n_envs)
        expected = []
        for env, p, a in zip(checkers, physics, actions):
            env.state, env.steps_beyond_terminated = p.copy(), None
            expected.append(env.step(int(a))[0])
        obs, _, term, trunc, infos = venv.step(actions)
        done = term | trunc
        if not done.any():
            assert infos == {}
            np.testing.assert_allclose(obs, expected, rtol=1e-6)
            continue
        n_ended += int(done.sum())
        assert set(infos) == {"final_obs", "_final_obs", "final_info", "_final_info"}
        np.testing.assert_array_equal(infos["_final_obs"], done)
        np.testing.assert_array_equal(infos["_final_info"], done)
        assert infos["final_obs"].dtype == object and infos["final_info"] == {}
        for i in range(n_envs):
            if done[i]:
                np.testing.assert_allclose(infos["final_obs"][i], expected[i], rtol=1e-6)
                assert infos["final_obs"][i].dtype == np.float32
                # obs already belongs to the next episode.
                assert _in_reset_support("CartPole-v1", obs[i], tol=1e-7)
            else:
                assert infos["final_obs"][i] is None
                np.testing.assert_allclose(obs[i], expected[i], rtol=1e-6)
    assert n_ended > n_envs


def test_vector_wrapper_info_layout_matches_sync_vector_env() -> None:
    sync = gym.make_vec(
        "MountainCar-v0",
        num_envs=2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
    )
    sync.reset(seed=0)
    ours = TFVectorEnv("MountainCar-v0", num_envs=2)
    ours.reset(seed=0)
    actions = np.ones(2, dtype=np.int64)
    for _ in range(199):  # random-free pushes never reach the flag: both truncate at 200
        assert sync.step(actions)[4] == {} and ours.step(actions)[4] == {}
    *_, sync_trunc, sync_infos = sync.step(actions)
    *_, our_trunc, our_infos = ours.step(actions)
    assert sync_trunc.all() and our_trunc.all()
    assert set(our_infos) == set(sync_infos)
    for key, value in sync_infos.items():
        assert type(our_infos[key]) is type(value)
        if isinstance(value, np.ndarray):
            assert our_infos[key].dtype == value.dtype and our_infos[key].shape == value.shape
    np.testing.assert_array_equal(our_infos["_final_obs"], sync_infos["_final_obs"])


def test_unknown_env_lists_ported_ids() -> None:
    with pytest.raises(ValueError, match="BipedalWalker-v3") as excinfo:
        get_tf_env("BipedalWalker-v3")
    for env_id in ENV_IDS:
        assert env_id in str(excinfo.value)
    with pytest.raises(ValueError, match="CartPole-v1"):
        TFVectorEnv("LunarLander-v3", num_envs=2)


def test_registry_and_overrides() -> None:
    assert sorted(PORTED_ENVS) == sorted(ENV_IDS + CONTINUOUS_IDS)
    shapes = {k: (e.obs_dim, e.n_actions, e.max_episode_steps) for k, e in PORTED_ENVS.items()}
    assert shapes == {
        "CartPole-v1": (4, 2, 500),
        "Acrobot-v1": (6, 3, 500),
        "MountainCar-v0": (2, 3, 200),
        "Pendulum-v1": (3, 1, 200),
        "MountainCarContinuous-v0": (2, 1, 999),
    }
    for env_id in CONTINUOUS_IDS:  # the ports' Box is gymnasium's
        box = gym.make(env_id).action_space
        assert PORTED_ENVS[env_id].continuous and not PORTED_ENVS["CartPole-v1"].continuous
        assert (PORTED_ENVS[env_id].action_low, PORTED_ENVS[env_id].action_high) == (
            tuple(box.low.tolist()),
            tuple(box.high.tolist()),
        )
    for env_id, env in PORTED_ENVS.items():
        assert env.env_id == env_id and env.dtype == tf.float32
        assert env.max_episode_steps == gym.spec(env_id).max_episode_steps
    short = get_tf_env("CartPole-v1", max_episode_steps=10, dtype="float64")
    assert short.max_episode_steps == 10 and short.dtype == tf.float64
    assert PORTED_ENVS["CartPole-v1"].max_episode_steps == 500  # registry entry untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        short.max_episode_steps = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="float32 or float64"):
        get_tf_env("CartPole-v1", dtype=tf.int32)


@pytest.mark.parametrize("env_id", sorted(PORTED_ENVS))
def test_pre_drawn_noise_resets_to_the_scaled_numbers(env_id):
    from a2c.envs.tf_envs import UniformNoise

    port = dataclasses.replace(get_tf_env(env_id), dtype=tf.float64, max_episode_steps=1)  # every step resets
    state, _ = port.reset(make_key(0), 3)
    u = np.random.default_rng(0).random((3, port.noise_dim))
    action = tf.zeros([3, port.n_actions], tf.float32) if port.continuous else tf.zeros([3], tf.int32)
    res = port.step(state, action, UniformNoise(tf.constant(u)))
    assert res.truncated.numpy().all()
    car = lambda: np.stack([-0.6 + 0.2 * u[:, 0], np.zeros(3)], axis=1)  # noqa: E731
    expected = {
        "CartPole-v1": lambda: -0.05 + 0.1 * u,
        "Acrobot-v1": lambda: (-0.1 + 0.2 * u).astype(np.float32),
        "MountainCar-v0": car,
        "MountainCarContinuous-v0": car,
        "Pendulum-v1": lambda: np.array([-np.pi, -1.0]) + 2 * np.array([np.pi, 1.0]) * u,
    }[env_id]()
    np.testing.assert_allclose(port.physics_of(res.state).numpy(), expected, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="columns"):
        port.step(state, action, UniformNoise(tf.constant(u[:, :0])))


def test_noisy_acrobot_takes_its_torque_noise_first():
    from a2c.envs.tf_envs import UniformNoise

    noisy = dataclasses.replace(get_tf_env("Acrobot-v1"), dtype=tf.float64, torque_noise_max=0.5)
    assert noisy.noise_dim == 5
    state, _ = noisy.reset(make_key(0), 2)
    u = np.array([[0.5, 0.1, 0.2, 0.3, 0.4], [1.0, 0.1, 0.2, 0.3, 0.4]])
    out = noisy.step(state, tf.constant([1, 1]), UniformNoise(tf.constant(u))).final_obs.numpy()
    quiet = dataclasses.replace(noisy, torque_noise_max=0.0)
    # u = 0.5 is zero noise; u = 1.0 is +0.5 torque, i.e. a different next state.
    np.testing.assert_array_equal(out[0], quiet.step(state, tf.constant([1, 1]), make_key(3)).final_obs.numpy()[0])
    assert not np.array_equal(out[1], quiet.step(state, tf.constant([1, 1]), make_key(3)).final_obs.numpy()[1])


# --- continuous-action ports -------------------------------------------------------------


def _continuous_action(env_id: str, obs: np.ndarray, rng: np.random.Generator, skilled: bool) -> np.ndarray:
    """A float32 action, often beyond the Box (the ports clip as gymnasium does); the
    skilled MountainCar push rides the velocity and reaches the flag (termination)."""
    if env_id == "MountainCarContinuous-v0" and skilled:
        return np.array([1.3 if obs[1] > 0 else -1.3], np.float32)
    return rng.normal(0.0, 1.5 if env_id == "MountainCarContinuous-v0" else 2.5, 1).astype(np.float32)


@pytest.mark.parametrize("env_id,n_steps", [("Pendulum-v1", 450), ("MountainCarContinuous-v0", 1100)])
def test_continuous_ports_step_for_step_with_gymnasium(env_id: str, n_steps: int) -> None:
    """Float64 ports copy gymnasium (states and rewards to round-off, flags exactly; run
    eagerly the states are bit-identical), with clipped and unclipped actions, through
    time limits, terminations and same-step autoresets, the ports running free between
    episode starts."""
    n_envs = 4
    port = get_tf_env(env_id, dtype=tf.float64)
    envs = [gym.make(env_id) for _ in range(n_envs)]
    gym_obs = np.stack([env.reset(seed=20 + i)[0] for i, env in enumerate(envs)])
    physics = np.stack([_gym_physics(env) for env in envs])
    steps = np.zeros(n_envs, np.int32)
    step = tf.function(
        lambda p, s, a, k: (lambda r: (r, port.physics_of(r.state)))(port.step(port.state_from_physics(p, s), a, k))
    )
    rng, key = np.random.default_rng(0), make_key(0)
    counts = {"terminated": 0, "truncated": 0}
    for t in range(n_steps):
        actions = np.stack([_continuous_action(env_id, o, rng, i % 2 == 0) for i, o in enumerate(gym_obs)])
        key, step_key = split_key(key)
        res, new_physics = step(physics, steps, tf.constant(actions), step_key)
        results = [env.step(a) for env, a in zip(envs, actions)]
        gym_obs = np.stack([r[0] for r in results])
        term, trunc = np.array([r[2] for r in results]), np.array([r[3] for r in results])
        where = f"at t={t}"
        # To round-off: in a tf.function the graph optimiser may regroup the float32 torque terms.
        np.testing.assert_allclose(res.reward.numpy(), [r[1] for r in results], rtol=1e-9, atol=1e-9, err_msg=where)
        np.testing.assert_array_equal(res.terminated.numpy(), term, err_msg=where)
        np.testing.assert_array_equal(res.truncated.numpy(), trunc, err_msg=where)
        np.testing.assert_allclose(res.final_obs.numpy(), gym_obs, rtol=1e-6, atol=1e-7, err_msg=where)
        new_physics = new_physics.numpy()
        running = ~(term | trunc)
        gym_state = np.stack([_gym_physics(env) for env in envs])
        np.testing.assert_allclose(new_physics[running], gym_state[running], rtol=1e-9, atol=1e-10, err_msg=where)
        for i in np.flatnonzero(~running):  # copy gymnasium's next episode into the port
            gym_obs[i] = envs[i].reset()[0]
            new_physics[i] = _gym_physics(envs[i])
        physics, steps = new_physics, res.state.steps.numpy()
        counts["terminated"] += int(term.sum())
        counts["truncated"] += int(trunc.sum())
    if env_id == "Pendulum-v1":
        assert counts == {"terminated": 0, "truncated": 2 * n_envs}
    else:
        assert counts["terminated"] >= 2 and counts["truncated"] >= 1, counts


@pytest.mark.parametrize("env_id", CONTINUOUS_IDS)
def test_continuous_reset_laws(env_id: str) -> None:
    port = get_tf_env(env_id, dtype=tf.float64)
    state, obs = port.reset(make_key(3), 4000)
    physics = port.physics_of(state).numpy()
    if env_id == "Pendulum-v1":  # theta in [-pi, pi), theta_dot in [-1, 1)
        assert np.all(np.abs(physics[:, 0]) <= np.pi) and np.all(np.abs(physics[:, 1]) <= 1.0)
        assert physics[:, 0].std() == pytest.approx(2 * np.pi / np.sqrt(12), rel=0.05)
        np.testing.assert_allclose(obs.numpy()[:, 0], np.cos(physics[:, 0]))
    else:
        assert np.all((physics[:, 0] >= -0.6) & (physics[:, 0] < -0.4)) and not np.any(physics[:, 1])
