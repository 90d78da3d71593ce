"""Environment construction: vector envs for training, single envs for evaluation.

What the model sees of an observation is an :class:`ObsSpec` (shape and dtype): Box
observations keep their shape (uint8 ones stay uint8 until the model, everything else
becomes float32), Discrete ones are one-hot encoded; any other space, and any action
space without a distribution in :mod:`a2c.distributions`, is refused with a message
that names it.

Autoreset is deliberately gymnasium's default NEXT_STEP mode, for every env: the
numpy-vectorised CartPole only supports it, and it keeps one code path. In that mode
the step that ends an episode returns the episode's *final* observation (exactly what
a truncation must bootstrap from), and the following step is a reset step whose
transition is not real and is masked out of the loss (see :mod:`a2c.rollout`).

Atari games (``ALE/...``) are built by :mod:`a2c.atari`: the zoo's preprocessing, and
episodes that end at a lost life while the game goes on (:func:`play_on` tells the
two apart in single-env loops).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vector_wrappers

from a2c.atari import is_atari, make_atari_env, make_atari_vec_env, register_atari
from a2c.errors import EnvError

SUPPORTED = "Discrete or bounded Box action spaces with Box or Discrete observation spaces"


@dataclass(frozen=True)
class ObsSpec:
    """Shape (without the batch axes) and dtype of the observations a model takes."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    @classmethod
    def flat(cls, size: int) -> "ObsSpec":
        return cls((int(size),), "float32")

    @property
    def size(self) -> int:
        """Number of features once flattened."""
        return int(np.prod(self.shape, dtype=np.int64))

    def tensor_spec(self, *batch: int | None, name: str | None = None) -> Any:
        """A ``tf.TensorSpec`` of a batch of these observations (leading axes ``batch``)."""
        import tensorflow as tf

        return tf.TensorSpec([*batch, *self.shape], self.dtype, name=name)

    def zeros(self, *batch: int) -> np.ndarray:
        return np.zeros((*batch, *self.shape), self.dtype)

    def describe(self) -> str:
        return f"{self.shape} {self.dtype}"


def observation_spec(observation_space: spaces.Space) -> ObsSpec:
    """The ObsSpec of what :func:`encode_observations` makes of a supported space."""
    if isinstance(observation_space, spaces.Discrete):
        return ObsSpec.flat(int(observation_space.n))
    dtype = "uint8" if observation_space.dtype == np.uint8 else "float32"
    return ObsSpec(tuple(int(d) for d in observation_space.shape), dtype)


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """Look up a registered environment, or raise EnvError naming it.

    ``module:EnvName-v0`` imports ``module`` first (which registers the env), as
    ``gym.make`` allows: third-party and test environments work from the command line.
    """
    try:
        if is_atari(env_id):
            register_atari()
        if ":" in env_id:
            module, name = env_id.split(":", 1)
            importlib.import_module(module)
            return gym.spec(name)
        return gym.spec(env_id)
    except ImportError as e:
        raise EnvError(f"unknown environment {env_id!r}: cannot import its module: {e}") from None
    except gym.error.Error as e:
        raise EnvError(f"unknown environment {env_id!r}: {e}") from None


def check_spaces(env_id: str, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Refuse spaces the actor-critic cannot handle, naming the offending space."""
    from a2c.distributions import distribution_for  # TensorFlow: imported once an env is checked

    distribution_for(env_id, action_space)
    if not isinstance(observation_space, (spaces.Box, spaces.Discrete)):
        raise EnvError(f"{env_id} has observation space {observation_space}; supported: {SUPPORTED}")


def box_bounds(env_id: str, action_space: spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    """The (low, high) of a Box action space the Gaussian head can act in, or EnvError.

    The Box must be one-dimensional, float and bounded: actions are clipped to it
    before ``env.step``, and an unbounded Box would leave the env to cope with any
    draw from the Gaussian.
    """
    if len(action_space.shape) != 1 or not np.issubdtype(action_space.dtype, np.floating):
        raise EnvError(f"{env_id} has action space {action_space}; supported Box action spaces are "
                       "one-dimensional and float")
    low, high = np.asarray(action_space.low, np.float64), np.asarray(action_space.high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise EnvError(f"{env_id} has an unbounded Box action space {action_space}; the Gaussian policy "
                       "clips its actions to the Box, so every bound must be finite")
    return low, high


def action_shape(action_space: spaces.Space) -> tuple[int, ...]:
    """Shape of one action in the rollout buffers: () for Discrete, (dim,) for Box."""
    return tuple(int(d) for d in action_space.shape) if isinstance(action_space, spaces.Box) else ()


def env_actions(actions: np.ndarray, action_space: spaces.Space) -> np.ndarray:
    """What ``env.step`` gets for a batch of the policy's actions: Box actions clipped
    to the bounds (the buffers and the loss keep the unclipped ones, see :mod:`a2c.distributions`)."""
    if isinstance(action_space, spaces.Box):
        return np.clip(actions, action_space.low, action_space.high).astype(action_space.dtype)
    return actions


def env_action(action: np.ndarray, action_space: spaces.Space) -> Any:
    """One env's action for a single (non-vector) ``env.step``: an int, or the clipped vector."""
    if isinstance(action_space, spaces.Box):
        return env_actions(np.asarray(action), action_space)
    return int(action)


def feature_space(observation_space: spaces.Space) -> spaces.Box:
    """The Box the model sees for a supported observation space (see :func:`observation_spec`)."""
    spec = observation_spec(observation_space)
    if isinstance(observation_space, spaces.Discrete):
        return spaces.Box(0.0, 1.0, spec.shape, np.float32)
    low = np.asarray(observation_space.low).astype(spec.dtype)
    high = np.asarray(observation_space.high).astype(spec.dtype)
    return spaces.Box(low, high, dtype=np.dtype(spec.dtype))


def observation_scale(features: spaces.Box) -> list[float]:
    """1 / max(|low|, |high|) per (flattened) feature, 1 where the bound is infinite or zero.

    Acrobot's angular velocities reach 4*pi and 9*pi while its other features stay in
    [-1, 1]; unscaled, they saturate a tanh trunk and dominate its gradient.
    """
    low = np.asarray(features.low, np.float64).reshape(-1)
    high = np.asarray(features.high, np.float64).reshape(-1)
    bound = np.maximum(np.abs(low), np.abs(high))
    usable = np.isfinite(bound) & (bound > 0)
    return np.where(usable, 1.0 / np.where(usable, bound, 1.0), 1.0).tolist()


def encode_observations(obs: Any, observation_space: spaces.Space) -> np.ndarray:
    """Map a batch of raw observations to what the model takes: (batch, *spec.shape) in spec.dtype."""
    if isinstance(observation_space, spaces.Discrete):
        index = np.asarray(obs, np.int64).reshape(-1) - int(observation_space.start)
        return np.eye(int(observation_space.n), dtype=np.float32)[index]
    spec = observation_spec(observation_space)
    obs = np.asarray(obs, spec.dtype)
    return obs.reshape(obs.shape[0], *spec.shape)


def make_vec_env(env_id: str, n_envs: int, atari_vector: str = "ale") -> gym.vector.VectorEnv:
    """A vector env with episode statistics and observations as :func:`observation_spec` says.

    Uses the environment's numpy-vectorised entry point where it has one (CartPole)
    and a SyncVectorEnv otherwise; both autoreset on the NEXT step. Atari games report
    whole games as their episodes, from the vector env ``atari_vector`` names (:mod:`a2c.atari`).
    """
    if is_atari(env_id):
        env = make_atari_vec_env(env_id, n_envs, atari_vector)
        try:
            check_spaces(env_id, env.single_observation_space, env.single_action_space)
        except BaseException:
            env.close()
            raise
        return env
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
    features = feature_space(single_obs_space)
    if not isinstance(single_obs_space, spaces.Box) or single_obs_space.dtype != features.dtype:
        env = vector_wrappers.TransformObservation(
            env, lambda obs: encode_observations(obs, single_obs_space),
            single_observation_space=features,
        )
    return vector_wrappers.RecordEpisodeStatistics(env)


def make_env(env_id: str, render_mode: str | None = None) -> tuple[gym.Env, spaces.Space]:
    """A single env for evaluation, and its raw observation space (encode with
    :func:`encode_observations`)."""
    if is_atari(env_id):  # whole games, rewards unclipped; an episode still ends at a lost life
        env = make_atari_env(env_id, render_mode=render_mode)
    else:
        env = gym.make(env_spec(env_id), **({"render_mode": render_mode} if render_mode else {}))
    check_spaces(env_id, env.observation_space, env.action_space)
    return env, env.observation_space


def env_spaces(env_id: str) -> tuple[spaces.Space, spaces.Space]:
    """(observation space, action space) of an environment, checked as training checks them."""
    env, obs_space = make_env(env_id)
    try:
        return obs_space, env.action_space
    finally:
        env.close()


def play_on(env: gym.Env, obs: Any, terminated: bool, truncated: bool,
            info: dict[str, Any]) -> tuple[Any, bool, dict[str, Any] | None]:
    """After a single env's step: the observation to act on next, whether the *game* is over,
    and the game's own tally (``info["episode"]``) when it reports one.

    An Atari episode ends at a lost life while the game goes on (``info["game_over"]``,
    :mod:`a2c.atari`): the env is then reset (a no-op step) and play continues. Evaluation
    and GIFs share this so that both play whole games and stop at the same step.
    """
    if info.get("game_over", terminated or truncated):
        return obs, True, info.get("episode")
    if terminated or truncated:
        obs, _ = env.reset()
    return obs, False, None
