"""Environment construction: vector envs for training, single envs for evaluation.

Every environment the agent sees has a flat float32 Box observation and a Discrete
action space. Box observations are flattened, Discrete ones one-hot encoded; any other
space is refused with a message that names it.

Autoreset is deliberately gymnasium's default NEXT_STEP mode, for every env: the
numpy-vectorised CartPole only supports it, and it keeps one code path. In that mode
the step that ends an episode returns the episode's *final* observation (exactly what
a truncation must bootstrap from), and the following step is a reset step whose
transition is not real and is masked out of the loss (see :mod:`a2c.rollout`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vector_wrappers

from a2c.errors import EnvError

SUPPORTED = "Discrete action spaces with Box or Discrete observation spaces"


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """Look up a registered environment, or raise EnvError naming it."""
    try:
        return gym.spec(env_id)
    except gym.error.Error as e:
        raise EnvError(f"unknown environment {env_id!r}: {e}") from None


def check_spaces(env_id: str, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Refuse spaces the actor-critic cannot handle, naming the offending space."""
    if not isinstance(action_space, spaces.Discrete):
        raise EnvError(f"{env_id} has action space {action_space}; supported: {SUPPORTED}")
    if not isinstance(observation_space, (spaces.Box, spaces.Discrete)):
        raise EnvError(f"{env_id} has observation space {observation_space}; supported: {SUPPORTED}")


def feature_space(observation_space: spaces.Space) -> spaces.Box:
    """The flat float32 Box the model sees for a supported observation space."""
    if isinstance(observation_space, spaces.Discrete):
        return spaces.Box(0.0, 1.0, (int(observation_space.n),), np.float32)
    low = np.asarray(observation_space.low, np.float32).reshape(-1)
    high = np.asarray(observation_space.high, np.float32).reshape(-1)
    return spaces.Box(low, high, dtype=np.float32)


def observation_scale(features: spaces.Box) -> list[float]:
    """1 / max(|low|, |high|) per feature, 1 where the bound is infinite or zero.

    Acrobot's angular velocities reach 4*pi and 9*pi while its other features stay in
    [-1, 1]; unscaled, they saturate a tanh trunk and dominate its gradient.
    """
    bound = np.maximum(np.abs(features.low), np.abs(features.high)).astype(np.float64)
    usable = np.isfinite(bound) & (bound > 0)
    return np.where(usable, 1.0 / np.where(usable, bound, 1.0), 1.0).tolist()


def encode_observations(obs: Any, observation_space: spaces.Space) -> np.ndarray:
    """Map a batch of raw observations to (batch, obs_dim) float32 features."""
    if isinstance(observation_space, spaces.Discrete):
        index = np.asarray(obs, np.int64).reshape(-1) - int(observation_space.start)
        return np.eye(int(observation_space.n), dtype=np.float32)[index]
    obs = np.asarray(obs, np.float32)
    return obs.reshape(obs.shape[0], -1)


def make_vec_env(env_id: str, n_envs: int) -> gym.vector.VectorEnv:
    """A vector env with episode statistics and flat float32 observations.

    Uses the environment's numpy-vectorised entry point where it has one (CartPole)
    and a SyncVectorEnv otherwise; both autoreset on the NEXT step.
    """
    spec = env_spec(env_id)
    probe = gym.make(spec)  # the single env tells us the spaces before we vectorise
    try:
        check_spaces(env_id, probe.observation_space, probe.action_space)
        single_obs_space = probe.observation_space
    finally:
        probe.close()
    if spec.vector_entry_point is not None:
        env = gym.make_vec(spec, num_envs=n_envs, vectorization_mode="vector_entry_point")
    else:
        env = gym.make_vec(spec, num_envs=n_envs, vectorization_mode="sync",
                           vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP})
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:  # a vector entry point chose otherwise
        env.close()
        raise EnvError(f"{env_id}: vector env autoresets in mode {mode}; a2c needs NEXT_STEP")
    if not isinstance(single_obs_space, spaces.Box) or len(single_obs_space.shape) != 1 \
            or single_obs_space.dtype != np.float32:
        features = feature_space(single_obs_space)
        env = vector_wrappers.TransformObservation(
            env, lambda obs: encode_observations(obs, single_obs_space),
            single_observation_space=features,
        )
    return vector_wrappers.RecordEpisodeStatistics(env)


def make_env(env_id: str, render_mode: str | None = None) -> tuple[gym.Env, spaces.Space]:
    """A single env for evaluation, and its raw observation space (encode with
    :func:`encode_observations`)."""
    spec = env_spec(env_id)
    env = gym.make(spec, **({"render_mode": render_mode} if render_mode else {}))
    check_spaces(env_id, env.observation_space, env.action_space)
    return env, env.observation_space


def env_dims(env_id: str) -> tuple[int, int]:
    """(obs_dim, n_actions) of the model an environment needs."""
    env, obs_space = make_env(env_id)
    try:
        return int(feature_space(obs_space).shape[0]), int(env.action_space.n)
    finally:
        env.close()
