"""What the agent accepts of an environment, and how observations reach the model (no TensorFlow).

An [`ObsSpec`][a2c.envs.spaces.ObsSpec] (shape and dtype) is what the model sees of an observation: Box
observations keep their shape (uint8 ones stay uint8 until the model, everything else
becomes float32), Discrete ones are one-hot encoded. The support rule for action
spaces ([`policy_kind`][a2c.envs.spaces.policy_kind]) lives here too, so that checking an env needs no TensorFlow;
[`a2c.agent.distributions`][a2c.agent.distributions] maps each kind to its distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, overload

import numpy as np
from gymnasium import spaces

from a2c.common.errors import EnvError

PolicyKind = Literal["categorical", "gaussian", "multi_categorical", "bernoulli"]

SUPPORTED = (
    "Discrete, MultiDiscrete, MultiBinary or bounded Box action spaces with Box, Discrete, Dict or Tuple (of "
    "Box and Discrete) observation spaces"
)
ACTION_SPACES = "Discrete, MultiDiscrete, MultiBinary and bounded Box action spaces"


@dataclass(frozen=True)
class ObsSpec:
    """Shape (without the batch axes) and dtype of the observations a model takes."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    @classmethod
    def flat(cls, size: int) -> ObsSpec:
        return cls((int(size),), "float32")

    @property
    def size(self) -> int:
        """Number of features once flattened."""
        return int(np.prod(self.shape, dtype=np.int64))

    def zeros(self, *batch: int) -> np.ndarray:
        return np.zeros((*batch, *self.shape), self.dtype)

    def describe(self) -> str:
        return f"{self.shape} {self.dtype}"


@dataclass(frozen=True)
class DictSpec:
    """Observations of a Dict space: one [`ObsSpec`][a2c.envs.spaces.ObsSpec] per key, in sorted
    key order. Batches of them are dicts of arrays (one per key, each in its own dtype:
    uint8 images stay uint8)."""

    items: tuple[tuple[str, ObsSpec], ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.items)

    def __getitem__(self, key: str) -> ObsSpec:
        return dict(self.items)[key]

    @property
    def size(self) -> int:
        return sum(spec.size for _, spec in self.items)

    def zeros(self, *batch: int) -> dict[str, np.ndarray]:
        return {k: spec.zeros(*batch) for k, spec in self.items}

    def describe(self) -> str:
        return "{" + ", ".join(f"{k!r}: {spec.describe()}" for k, spec in self.items) + "}"


#: What a model takes: one array, or a dict of them.
AnySpec = ObsSpec | DictSpec


def _parts(space: spaces.Dict | spaces.Tuple) -> dict[str, spaces.Space]:
    """A Dict's sub-spaces by key, a Tuple's by position ("0", "1", ..): the keys of its DictSpec."""
    if isinstance(space, spaces.Tuple):
        return {str(i): sub for i, sub in enumerate(space.spaces)}
    return {str(k): sub for k, sub in space.spaces.items()}


def image_layout(shape: tuple[int, ...]) -> Literal["channels_first", "channels_last"]:
    """How a convolutional trunk reads (a, b, c) observations: channels-last (height, width,
    channels) when the last axis is strictly the smallest (MinAtar's 10x10xC, an RGB frame),
    else channels-first (frames, height, width), as the Atari stacks."""
    return "channels_last" if len(shape) == 3 and shape[2] < shape[0] and shape[2] < shape[1] else "channels_first"


@overload
def observation_spec(observation_space: spaces.Dict) -> DictSpec: ...


@overload
def observation_spec(observation_space: spaces.Space) -> Any: ...


def observation_spec(observation_space: spaces.Space) -> Any:
    """The ObsSpec of what [`encode_observations`][a2c.envs.spaces.encode_observations] makes of a supported
    space (a DictSpec for a Dict space)."""
    if isinstance(observation_space, (spaces.Dict, spaces.Tuple)):
        items = sorted((k, observation_spec(sub)) for k, sub in _parts(observation_space).items())
        return DictSpec(tuple(items))
    if isinstance(observation_space, spaces.Discrete):
        return ObsSpec.flat(int(observation_space.n))
    box = cast(spaces.Box, observation_space)  # the other supported space
    dtype = "uint8" if box.dtype == np.uint8 else "float32"
    return ObsSpec(tuple(int(d) for d in box.shape), dtype)


def policy_kind(env_id: str, action_space: spaces.Space) -> PolicyKind:
    """The policy an action space needs, or EnvError naming the space: a categorical
    (Discrete), independent categoricals (MultiDiscrete), independent Bernoullis
    (MultiBinary) or a diagonal Gaussian (bounded Box).
    [`a2c.agent.distributions.distribution_for`][a2c.agent.distributions.distribution_for] maps it to its
    distribution."""
    if isinstance(action_space, spaces.Discrete):
        return "categorical"
    if isinstance(action_space, spaces.Box):
        box_bounds(env_id, action_space)
        return "gaussian"
    if isinstance(action_space, spaces.MultiDiscrete):
        multi_discrete_sizes(env_id, action_space)
        return "multi_categorical"
    if isinstance(action_space, spaces.MultiBinary):
        multi_binary_size(env_id, action_space)
        return "bernoulli"
    raise EnvError(f"{env_id} has action space {action_space}; supported: {ACTION_SPACES}")


def multi_discrete_sizes(env_id: str, action_space: spaces.MultiDiscrete) -> tuple[int, ...]:
    """The number of choices of each sub-action of a MultiDiscrete space, or EnvError:
    the space must be one-dimensional, non-empty, with at least one choice per sub-action."""
    nvec = np.asarray(action_space.nvec)
    if nvec.ndim != 1 or nvec.size == 0 or (nvec < 1).any():
        raise EnvError(
            f"{env_id} has action space {action_space}; supported MultiDiscrete action spaces are "
            "one-dimensional and non-empty, with at least one choice per sub-action"
        )
    return tuple(int(n) for n in nvec)


def multi_binary_size(env_id: str, action_space: spaces.MultiBinary) -> int:
    """The number of binary sub-actions of a MultiBinary space, or EnvError (one-dimensional, non-empty)."""
    shape = tuple(int(d) for d in np.atleast_1d(action_space.n))
    if len(shape) != 1 or shape[0] < 1:
        raise EnvError(
            f"{env_id} has action space {action_space}; supported MultiBinary action spaces are "
            "one-dimensional and non-empty"
        )
    return shape[0]


def check_spaces(env_id: str, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Refuse spaces the actor-critic cannot handle, naming the offending space."""
    policy_kind(env_id, action_space)
    if isinstance(observation_space, (spaces.Dict, spaces.Tuple)):
        kind = type(observation_space).__name__
        if not _parts(observation_space):
            raise EnvError(f"{env_id} has an empty {kind} observation space; supported: {SUPPORTED}")
        for key, sub in _parts(observation_space).items():
            if not isinstance(sub, (spaces.Box, spaces.Discrete)):
                what = f"key {key!r}" if kind == "Dict" else f"element {key}"
                raise EnvError(
                    f"{env_id} has observation {what} of space {sub}; a {kind} observation space may hold "
                    "Box and Discrete spaces"
                )
        return
    if not isinstance(observation_space, (spaces.Box, spaces.Discrete)):
        raise EnvError(f"{env_id} has observation space {observation_space}; supported: {SUPPORTED}")


def box_bounds(env_id: str, action_space: spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    """The (low, high) of a Box action space the Gaussian head can act in, or EnvError.

    The Box must be one-dimensional, float and bounded: actions are clipped to it
    before ``env.step``, and an unbounded Box would leave the env to cope with any
    draw from the Gaussian.
    """
    if len(action_space.shape) != 1 or not np.issubdtype(action_space.dtype, np.floating):
        raise EnvError(
            f"{env_id} has action space {action_space}; supported Box action spaces are one-dimensional and float"
        )
    low, high = np.asarray(action_space.low, np.float64), np.asarray(action_space.high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise EnvError(
            f"{env_id} has an unbounded Box action space {action_space}; the Gaussian policy "
            "clips its actions to the Box, so every bound must be finite"
        )
    return low, high


def action_shape(action_space: spaces.Space) -> tuple[int, ...]:
    """Shape of one action in the rollout buffers: () for Discrete, (dim,) for Box,
    (sub-actions,) for MultiDiscrete and MultiBinary."""
    if isinstance(action_space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        return tuple(int(d) for d in action_space.shape)
    return ()


def action_dtype(action_space: spaces.Space) -> str:
    """dtype of one action in the rollout buffers: float32 for Box, int32 for the rest."""
    return "float32" if isinstance(action_space, spaces.Box) else "int32"


def env_actions(actions: np.ndarray, action_space: spaces.Space) -> np.ndarray:
    """What ``env.step`` gets for a batch of the policy's actions: Box actions clipped
    to the bounds (the buffers and the loss keep the unclipped ones, see
    [`a2c.agent.distributions`][a2c.agent.distributions])."""
    if isinstance(action_space, spaces.Box):
        return np.clip(actions, action_space.low, action_space.high).astype(action_space.dtype)
    if isinstance(action_space, spaces.MultiDiscrete):
        # the policy's choices count from 0; the space's from ``start``
        start = np.asarray(getattr(action_space, "start", 0))
        return (np.asarray(actions) + start).astype(action_space.dtype)
    if isinstance(action_space, spaces.MultiBinary):
        return np.asarray(actions).astype(action_space.dtype)
    return actions


def env_action(action: np.ndarray, action_space: spaces.Space) -> Any:
    """One env's action for a single (non-vector) ``env.step``: an int, or the (clipped) vector."""
    if isinstance(action_space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        return env_actions(np.asarray(action), action_space)
    return int(action)


def feature_space(observation_space: spaces.Space) -> Any:
    """The Box the model sees for a supported observation space (see
    [`observation_spec`][a2c.envs.spaces.observation_spec]); a Dict of them for a Dict space."""
    if isinstance(observation_space, (spaces.Dict, spaces.Tuple)):
        return spaces.Dict({k: feature_space(sub) for k, sub in _parts(observation_space).items()})
    spec = observation_spec(observation_space)
    if isinstance(observation_space, spaces.Discrete):
        return spaces.Box(0.0, 1.0, spec.shape, np.float32)
    box = cast(spaces.Box, observation_space)  # the other supported space
    low = np.asarray(box.low).astype(spec.dtype)
    high = np.asarray(box.high).astype(spec.dtype)
    return spaces.Box(low, high, dtype=np.dtype(spec.dtype))


def observation_scale(features: spaces.Box) -> list[float]:
    """1 / max(|low|, |high|) per (flattened) feature, 1 where the bound is infinite or zero.

    Acrobot's angular velocities reach ``4*pi`` and ``9*pi`` while its other features stay in
    [-1, 1]; unscaled, they saturate a tanh trunk and dominate its gradient.
    """
    low = np.asarray(features.low, np.float64).reshape(-1)
    high = np.asarray(features.high, np.float64).reshape(-1)
    bound = np.maximum(np.abs(low), np.abs(high))
    usable = np.isfinite(bound) & (bound > 0)
    return np.where(usable, 1.0 / np.where(usable, bound, 1.0), 1.0).tolist()


def encode_observations(obs: Any, observation_space: spaces.Space) -> Any:
    """Map a batch of raw observations to what the model takes: (batch, *spec.shape) in spec.dtype.

    A Dict space's batch (a dict of batched arrays, as vector envs give, or a sequence of
    single observations) becomes a dict of such arrays, one per key; a Tuple space's (a tuple
    of batched arrays, or a sequence of single tuples) one keyed "0", "1", ...
    """
    if isinstance(observation_space, spaces.Tuple):
        # a tuple of batched arrays (vector envs), or a sequence of single tuples: keys "0", "1", ..
        if isinstance(obs, tuple):
            return {str(i): encode_observations(x, sub) for i, (x, sub) in enumerate(zip(obs, observation_space))}
        return {str(i): encode_observations([o[i] for o in obs], sub) for i, sub in enumerate(observation_space)}
    if isinstance(observation_space, spaces.Dict):
        subspaces = observation_space.spaces
        if isinstance(obs, Mapping):
            return {k: encode_observations(obs[k], sub) for k, sub in subspaces.items()}
        return {k: encode_observations([o[k] for o in obs], sub) for k, sub in subspaces.items()}
    if isinstance(observation_space, spaces.Discrete):
        index = np.asarray(obs, np.int64).reshape(-1) - int(observation_space.start)
        return np.eye(int(observation_space.n), dtype=np.float32)[index]
    spec = observation_spec(observation_space)
    obs = np.asarray(obs, spec.dtype)
    return obs.reshape(obs.shape[0], *spec.shape)


def obs_row(batch: Any, i: int) -> Any:
    """Row ``i`` of a batch of encoded observations (an array, or a dict of them)."""
    return {k: v[i] for k, v in batch.items()} if isinstance(batch, Mapping) else batch[i]


def stack_obs(rows: Sequence[Any]) -> Any:
    """A batch from rows of encoded observations (arrays, or dicts of them)."""
    if rows and isinstance(rows[0], Mapping):
        return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    return np.stack(rows)


def set_obs_row(batch: Any, i: int, row: Any) -> None:
    """Overwrite row ``i`` of a batch of encoded observations in place."""
    if isinstance(batch, Mapping):
        for k, v in batch.items():
            v[i] = row[k]
    else:
        batch[i] = row


def cast_obs(obs: Any, spec: AnySpec) -> Any:
    """A batch of (encoded) observations as arrays of the spec's dtype(s)."""
    if isinstance(spec, DictSpec):
        return {k: np.asarray(obs[k], sub.dtype) for k, sub in spec.items}
    return np.asarray(obs, spec.dtype)


def copy_obs(batch: Any) -> Any:
    """A copy of a batch of encoded observations (an array, or a dict of them)."""
    return {k: v.copy() for k, v in batch.items()} if isinstance(batch, Mapping) else batch.copy()
