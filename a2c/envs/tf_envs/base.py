"""Shared machinery for the pure, batched TensorFlow ports of classic-control envs.

Why ports at all: stepping gymnasium's numpy envs from Python costs a round trip per
step, which dominates A2C on tiny MLPs. A port whose ``reset``/``step`` are pure
tensor functions can live inside one ``tf.function`` together with the policy, so a
whole rollout of thousands of envs is a single compiled program (an XLA one with
``jit_compile=True``).

Design rules every port follows:

* **Pure and batched.** ``reset(key, n_envs)`` and ``step(state, action, key)`` take
  and return tensors only; the env description ([`TFEnv`][a2c.envs.tf_envs.base.TFEnv]) is a frozen
  dataclass, so nothing hides in Python-side state and every call is re-traceable.
* **Stateless RNG.** Randomness comes from an explicit ``key``: an int32/int64 tensor
  of shape ``[2]`` fed to ``tf.random.stateless_*``. Callers split keys (see
  [`split_key`][a2c.envs.tf_envs.base.split_key]); the same key always gives the same result *within one
  execution mode*. XLA's stateless RNG kernels produce different streams from the
  graph/eager kernels, so jit and non-jit runs with the same key differ.
  Wherever a key is taken, a ``tf.random.Generator`` may be passed instead (each
  draw then advances it, and no key is split), or [`UniformNoise`][a2c.envs.tf_envs.base.UniformNoise]: uniform
  numbers the caller drew beforehand, ``noise_dim`` per env and step. Inside XLA each
  draw is a separately compiled Philox computation (a stateless draw from a key is
  two, a split two more; compile costs in results/tuning.md), so a
  caller that draws its own noise (e.g. the fused trainer's action noise) together
  with the env's in ONE draw compiles fastest.
* **Fixed shapes, branchless.** Autoreset is done in the same step with ``tf.where``
  on a freshly sampled reset state, so ``tf.while_loop`` carries never change shape.
* **Same-step autoreset.** When an env ends, ``obs`` already is the next episode's
  first observation and ``final_obs`` the one the episode ended on (the value to
  bootstrap a truncation from). Flags follow gymnasium's ``TimeLimit``: ``truncated``
  is set whenever the step counter reaches the limit, *even if the env also
  terminated on that step*, so both flags can be true at once. Consumers should treat
  ``terminated`` as taking precedence (bootstrap only on ``truncated & ~terminated``).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, NamedTuple

import tensorflow as tf

#: RNG algorithm for all stateless sampling, pinned so results do not depend on
#: TensorFlow's "auto_select" choice.
RNG_ALG = "philox"

#: A port's state: a NamedTuple of ``[n_envs]`` tensors whose last field is the
#: int32 ``steps`` counter used for the time limit.
EnvState = Any


class StepResult(NamedTuple):
    """What [`TFEnv.step`][a2c.envs.tf_envs.base.TFEnv.step] returns; a NamedTuple so it nests in ``tf.while_loop``."""

    state: EnvState
    obs: tf.Tensor  # [n, obs_dim]; a fresh first observation where the env ended
    reward: tf.Tensor  # [n], env dtype
    terminated: tf.Tensor  # [n] bool
    truncated: tf.Tensor  # [n] bool
    final_obs: tf.Tensor  # [n, obs_dim]; the observation the step produced before autoreset


class UniformNoise:
    """Pre-drawn U[0, 1) numbers ``[n_envs, k]`` (``k >= env.noise_dim``) for one step.

    The env takes columns in a fixed order (dynamics noise first, then the reset
    state), each column scaled to the range gymnasium draws from. The column count
    taken so far is Python state of one trace, so a fresh object is needed per step.
    """

    def __init__(self, u: tf.Tensor) -> None:
        self.u = u
        self.taken = 0

    def take(self, columns: int) -> tf.Tensor:
        width = self.u.shape[-1]
        if width is not None and self.taken + columns > width:
            raise ValueError(f"UniformNoise has {width} columns; this step needs more than that")
        block = self.u[:, self.taken : self.taken + columns]
        self.taken += columns
        return block


def make_key(seed: int) -> tf.Tensor:
    """An int64 ``[2]`` RNG key from a Python int, for callers that think in seeds."""
    seed = int(seed)
    return tf.constant([seed % 2**63, seed // 2**63], dtype=tf.int64)


def split_key(key: tf.Tensor, num: int = 2) -> tf.Tensor:
    """``num`` independent keys (shape ``[num, 2]``) derived from ``key``, jit-safe."""
    return tf.random.experimental.stateless_split(key, num=num)


def batch_size(tensor: tf.Tensor) -> int | tf.Tensor:
    """Static batch size when known (XLA needs constant shapes), else a dynamic one."""
    static = tensor.shape[0]
    return static if static is not None else tf.shape(tensor)[0]


@dataclasses.dataclass(frozen=True)
class TFEnv(abc.ABC):
    """Description of one ported env plus its pure batched ``reset``/``step``.

    Subclasses fix ``env_id``, ``obs_dim`` and ``n_actions`` and implement the three
    hooks; this class adds the time limit and same-step autoreset once for all.
    Variants are made with ``dataclasses.replace``, e.g. ``dtype=tf.float64`` for
    tight comparisons against gymnasium (whose physics runs in float64) or a shorter
    ``max_episode_steps``.
    """

    env_id: str
    obs_dim: int
    n_actions: int
    max_episode_steps: int
    dtype: tf.DType

    #: NamedTuple class of the state; physics fields first, ``steps`` last.
    state_type: ClassVar[type[Any]]
    #: Box action bounds (one per dimension) of a continuous port, whose ``n_actions`` is
    #: then the number of action dimensions; None for discrete ports (int actions).
    action_low: ClassVar[tuple[float, ...] | None] = None
    action_high: ClassVar[tuple[float, ...] | None] = None
    #: Observation bounds, exactly gymnasium's ``observation_space`` low/high.
    obs_low: ClassVar[tuple[float, ...]]
    obs_high: ClassVar[tuple[float, ...]]

    def __post_init__(self) -> None:
        dtype = tf.as_dtype(self.dtype)
        if dtype not in (tf.float32, tf.float64):
            raise ValueError(f"{self.env_id}: dtype must be float32 or float64, got {dtype.name}")
        object.__setattr__(self, "dtype", dtype)
        if int(self.max_episode_steps) < 1:
            raise ValueError(f"{self.env_id}: max_episode_steps must be >= 1, got {self.max_episode_steps}")

    # ------------------------------------------------------------------ hooks
    #: Uniform numbers one reset draws per env.
    reset_noise_dim: ClassVar[int]

    @abc.abstractmethod
    def _sample_physics(self, key: tf.Tensor, n_envs: int | tf.Tensor) -> tuple[tf.Tensor, ...]:
        """Physics fields of ``n_envs`` fresh episodes, drawn from gymnasium's reset law."""

    @abc.abstractmethod
    def _dynamics(self, state: EnvState, action: tf.Tensor, key: tf.Tensor) -> tuple[EnvState, tf.Tensor, tf.Tensor]:
        """One physics step: ``(next_state, reward, terminated)``; ``steps`` is left as is."""

    @abc.abstractmethod
    def observe(self, state: EnvState) -> tf.Tensor:
        """The ``[n, obs_dim]`` observation of a state, in the env dtype."""

    # ------------------------------------------------------------- public API
    @property
    def noise_dim(self) -> int:
        """Uniform numbers one step may use per env (dynamics noise + reset state): the
        width a [`UniformNoise`][a2c.envs.tf_envs.base.UniformNoise] must have."""
        return self.reset_noise_dim

    @property
    def continuous(self) -> bool:
        """Whether the port takes Box actions (see [`action_low`][a2c.envs.tf_envs.base.TFEnv.action_low])."""
        return self.action_low is not None

    @property
    def n_physics(self) -> int:
        """Number of physics fields in the state (all fields but ``steps``)."""
        return len(self.state_type._fields) - 1

    def reset(self, key: tf.Tensor, n_envs: int | tf.Tensor) -> tuple[EnvState, tf.Tensor]:
        """Start ``n_envs`` episodes: ``(state, obs)``. Pass a Python int under XLA."""
        state = self._fresh_state(key, n_envs)
        return state, self.observe(state)

    def step(self, state: EnvState, action: tf.Tensor, key: tf.Tensor) -> StepResult:
        """Advance every env one step, autoresetting ended ones in the same step.

        ``key`` seeds the replacement episodes (and any dynamics noise); it must be a
        fresh key each step, e.g. from [`split_key`][a2c.envs.tf_envs.base.split_key], a ``tf.random.Generator``
        (which this call advances), or a fresh [`UniformNoise`][a2c.envs.tf_envs.base.UniformNoise].
        """
        # Discrete ports take int actions; continuous ones (n, dims) in the env dtype.
        action = tf.cast(action, tf.int32 if self.action_low is None else self.dtype)
        if isinstance(key, (tf.random.Generator, UniformNoise)):
            reset_key = dynamics_key = key
        else:
            reset_key, dynamics_key = tf.unstack(split_key(key))
        stepped, reward, terminated = self._dynamics(state, action, dynamics_key)
        steps = state.steps + 1
        stepped = stepped._replace(steps=steps)
        # TimeLimit semantics: the counter alone decides truncation, regardless of
        # termination, so both flags may be set on the same step.
        truncated = steps >= self.max_episode_steps
        done = tf.logical_or(terminated, truncated)

        fresh = self._fresh_state(reset_key, batch_size(steps))
        new_state = tf.nest.map_structure(lambda f, s: tf.where(done, f, s), fresh, stepped)
        final_obs = self.observe(stepped)
        obs = self.observe(new_state)
        return StepResult(new_state, obs, reward, terminated, truncated, final_obs)

    def state_from_physics(self, physics: Any, steps: Any = None) -> EnvState:
        """Build a state from an ``[n, n_physics]`` array (e.g. gymnasium's ``env.state``).

        ``steps`` defaults to zeros, i.e. the state of a freshly reset episode.
        """
        physics = tf.convert_to_tensor(physics)
        physics = tf.cast(physics, self.dtype)
        fields = tf.unstack(physics, num=self.n_physics, axis=1)
        if steps is None:
            steps = tf.zeros_like(fields[0], dtype=tf.int32)
        return self.state_type(*fields, tf.cast(steps, tf.int32))

    def physics_of(self, state: EnvState) -> tf.Tensor:
        """The ``[n, n_physics]`` physics array of a state; undoes
        [`state_from_physics`][a2c.envs.tf_envs.base.TFEnv.state_from_physics]."""
        return tf.stack(list(state[: self.n_physics]), axis=1)

    # ---------------------------------------------------------------- helpers
    def _fresh_state(self, key: tf.Tensor, n_envs: int | tf.Tensor) -> EnvState:
        return self.state_type(*self._sample_physics(key, n_envs), tf.zeros([n_envs], tf.int32))

    def _uniform(self, key: tf.Tensor, shape: Any, low: float, high: float) -> tf.Tensor:
        """Uniform ``[low, high)`` samples in the env dtype, like ``np_random.uniform``.

        ``key`` is a ``[2]`` key, a ``tf.random.Generator`` or [`UniformNoise`][a2c.envs.tf_envs.base.UniformNoise]
        (``shape`` is then ``[n_envs]`` or ``[n_envs, columns]``)."""
        if isinstance(key, UniformNoise):
            u = key.take(1 if len(shape) == 1 else int(shape[1]))
            u = tf.cast(u[:, 0] if len(shape) == 1 else u, self.dtype)
            return low + (high - low) * u
        if isinstance(key, tf.random.Generator):
            return key.uniform(shape, minval=low, maxval=high, dtype=self.dtype)
        return tf.random.stateless_uniform(shape, seed=key, minval=low, maxval=high, dtype=self.dtype, alg=RNG_ALG)
