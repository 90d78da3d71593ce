"""Gymnasium-API wrappers around the TensorFlow ports (numpy in, numpy out).

They exist so a port can be dropped in wherever gymnasium envs are expected (the
env checker, evaluation code, SB3-style tooling) and so tests can compare a port with
gymnasium through one interface. For speed, call the port's pure functions inside a
``tf.function`` instead; these wrappers pay a host round trip per step.

Randomness: ``reset(seed=...)`` seeds gymnasium's ``np_random`` as usual, and every
reset/step draws its TF key from it, so a seed fixes the whole trajectory.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import tensorflow as tf
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from a2c.envs.tf_envs import get_tf_env
from a2c.envs.tf_envs.base import EnvState, StepResult, TFEnv


def observation_space(env: TFEnv) -> spaces.Box:
    """Gymnasium's float32 ``Box`` observation space for a port (same bounds)."""
    low, high = np.array(env.obs_low, np.float32), np.array(env.obs_high, np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def action_space(env: TFEnv) -> spaces.Discrete:
    """Gymnasium's ``Discrete`` action space for a port."""
    return spaces.Discrete(env.n_actions)


def _resolve(env: TFEnv | str) -> TFEnv:
    return get_tf_env(env) if isinstance(env, str) else env


class _Driver:
    """Compiled reset/step for a fixed batch size, keyed from a numpy Generator."""

    def __init__(self, env: TFEnv, n_envs: int, jit_compile: bool) -> None:
        self.env = env
        self.n_envs = n_envs
        self._reset = tf.function(lambda key: env.reset(key, n_envs), jit_compile=jit_compile)
        self._step = tf.function(env.step, jit_compile=jit_compile)

    @staticmethod
    def key(rng: np.random.Generator) -> tf.Tensor:
        return tf.constant(rng.integers(0, 2**63 - 1, size=2, dtype=np.int64))

    def reset(
        self, rng: np.random.Generator, options: dict[str, Any] | None
    ) -> tuple[EnvState, npt.NDArray[np.float32]]:
        """Fresh batch; options are refused rather than silently ignored."""
        if options:
            raise ValueError(f"{self.env.env_id} port supports no reset options, got {options!r}")
        state, obs = self._reset(self.key(rng))
        return state, obs.numpy().astype(np.float32)

    def step(self, state: EnvState, actions: Any, rng: np.random.Generator) -> StepResult:
        return self._step(state, tf.constant(self.check_actions(actions)), self.key(rng))

    def check_actions(self, actions: Any) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.n_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"expected {self.n_envs} integer actions, got {actions!r}")
        if actions.min() < 0 or actions.max() >= self.env.n_actions:
            raise ValueError(f"actions must lie in [0, {self.env.n_actions}), got {actions!r}")
        return actions.astype(np.int32)


class TFVectorEnv(VectorEnv):
    """A port as a ``gymnasium.vector.VectorEnv`` with same-step autoreset.

    Mirrors ``SyncVectorEnv(autoreset_mode=SAME_STEP)``: when an env ends, ``obs``
    holds the new episode's first observation and ``infos`` carries ``final_obs`` (an
    object array, ``None`` for envs that did not end), ``final_info`` and their
    ``_``-masks. Rewards are float64 as in ``SyncVectorEnv``; observations float32.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env: TFEnv | str, num_envs: int, *, jit_compile: bool = False) -> None:
        """``jit_compile`` pays an XLA compile once; worth it only for large ``num_envs``."""
        self.tf_env = _resolve(env)
        self.num_envs = int(num_envs)
        self.single_observation_space = observation_space(self.tf_env)
        self.single_action_space = action_space(self.tf_env)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._driver = _Driver(self.tf_env, self.num_envs, jit_compile)
        #: The port's current batched state (``None`` before the first reset).
        self.state: EnvState | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self.state, obs = self._driver.reset(self.np_random, options)
        return obs, {}

    def step(
        self, actions: Any
    ) -> tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
        dict[str, Any],
    ]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        result = self._driver.step(self.state, actions, self.np_random)
        self.state = result.state
        terminated = result.terminated.numpy()
        truncated = result.truncated.numpy()
        done = terminated | truncated
        infos: dict[str, Any] = {}
        if done.any():
            final = result.final_obs.numpy().astype(np.float32)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = final[i]
            infos = {
                "final_obs": final_obs,
                "_final_obs": done.copy(),
                "final_info": {},
                "_final_info": done.copy(),
            }
        return (
            result.obs.numpy().astype(np.float32),
            result.reward.numpy().astype(np.float64),
            terminated,
            truncated,
            infos,
        )


class TFGymEnv(gym.Env[np.ndarray, np.int64]):
    """A port as a single ``gymnasium.Env`` (one env in a batch of one).

    Behaves like ``gymnasium.make(env_id)`` including the ``TimeLimit``: the step that
    ends an episode returns the episode's final observation; call ``reset()`` next
    (stepping on continues in an already-reset episode, where gymnasium's behaviour is
    undefined).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env: TFEnv | str, *, jit_compile: bool = False) -> None:
        self.tf_env = _resolve(env)
        self.observation_space = observation_space(self.tf_env)
        self.action_space = action_space(self.tf_env)
        self._driver = _Driver(self.tf_env, 1, jit_compile)
        #: The port's batched state of size 1 (``None`` before the first reset).
        self.state: EnvState | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self.state, obs = self._driver.reset(self.np_random, options)
        return obs[0], {}

    def step(self, action: Any) -> tuple[npt.NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        result = self._driver.step(self.state, np.reshape(np.asarray(action), (1,)), self.np_random)
        self.state = result.state
        return (
            result.final_obs.numpy()[0].astype(np.float32),
            float(result.reward.numpy()[0]),
            bool(result.terminated.numpy()[0]),
            bool(result.truncated.numpy()[0]),
            {},
        )
