"""Environment snapshots: the state of a gymnasium vector env stack as JSON-able data.

Gymnasium has no get/set-state API, so the env's state is taken from its objects'
attributes: every wrapper layer, the base vector env and, for a SyncVectorEnv, each
sub-env's wrapper stack. Plain data (numbers, arrays, numpy Generators, deques, ...)
is saved bit-exactly; configuration (spaces, specs, metadata, functions, enums) is
skipped; any other object (a Box2D world, a pygame surface) cannot be saved, and the
snapshot lists it as ``opaque``.
"""

from __future__ import annotations

import base64
import enum
from collections import deque
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from a2c.common.errors import RunDirError

_SKIPPED_ATTRS = frozenset(
    {
        "spec",
        "metadata",
        "_metadata",
        "render_mode",
        "env_fns",
        "_saved_kwargs",
        "_ezpickle_args",
        "_ezpickle_kwargs",
        "_cached_spec",
    }
)
EnvLike = gym.Env | gym.vector.VectorEnv


class _Opaque(Exception):
    """A value that is not plain data."""


def _is_env(value: Any) -> bool:
    return isinstance(value, (gym.Env, gym.vector.VectorEnv))


def _is_env_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_env(v) for v in value)


def _is_config(name: str, value: Any) -> bool:
    return (
        name in _SKIPPED_ATTRS
        or callable(value)
        or isinstance(value, (gym.spaces.Space, gym.envs.registration.EnvSpec, enum.Enum))
    )


def env_layers(env: EnvLike, path: str = "env") -> Iterator[tuple[str, Any]]:
    """Every object of an env stack with a stable path: ``env``, ``env.env``,
    ``env.env.envs[0]``, ``env.env.envs[0].env``, ..."""
    yield path, env
    for name, value in vars(env).items():
        if _is_env(value):
            yield from env_layers(value, f"{path}.{name}")
        elif _is_env_list(value):
            for i, sub in enumerate(value):
                yield from env_layers(sub, f"{path}.{name}[{i}]")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(value: Any) -> Any:
    """Plain data -> JSON-able, bit-exact (arrays as raw bytes); raise _Opaque otherwise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise _Opaque
        return {"ndarray": [value.dtype.str, list(value.shape), _b64(np.ascontiguousarray(value).tobytes())]}
    if isinstance(value, np.generic):
        if value.dtype.hasobject:
            raise _Opaque
        return {"scalar": [value.dtype.str, _b64(value.tobytes())]}
    if isinstance(value, np.random.Generator):
        return {"rng": encode(value.bit_generator.state)}
    if isinstance(value, deque):
        return {"deque": [encode(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return {"list": [encode(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode(v) for k, v in value.items()}}
    raise _Opaque


def decode(data: Any) -> Any:
    """Inverse of [`encode`][a2c.envs.state.encode]."""
    if not isinstance(data, dict):
        return data
    if "ndarray" in data:
        dtype, shape, raw = data["ndarray"]
        return np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype)).reshape(shape).copy()
    if "scalar" in data:
        dtype, raw = data["scalar"]
        return np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype))[0]
    if "rng" in data:
        state = decode(data["rng"])
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
        return np.random.Generator(bit_generator)
    if "deque" in data:
        return deque((decode(v) for v in data["deque"]), maxlen=data["maxlen"])
    if "tuple" in data:
        return tuple(decode(v) for v in data["tuple"])
    if "list" in data:
        return [decode(v) for v in data["list"]]
    if "dict" in data:
        return {k: decode(v) for k, v in data["dict"].items()}
    raise ValueError(f"not an encoded value: {sorted(data)}")


def snapshot_env(env: EnvLike) -> dict[str, Any]:
    """The state of a vector env stack as JSON-able data.

    ``opaque`` lists the attributes that could not be captured; if it is not empty the
    env cannot be restored exactly (see [`restore_env`][a2c.envs.state.restore_env]).
    """
    layers: dict[str, Any] = {}
    opaque: list[str] = []
    for path, obj in env_layers(env):
        attrs: dict[str, Any] = {}
        for name, value in vars(obj).items():
            if _is_env(value) or _is_env_list(value) or _is_config(name, value):
                continue
            try:
                attrs[name] = encode(value)
            except _Opaque:
                opaque.append(f"{path}.{name} ({type(value).__name__})")
        layers[path] = {"type": type(obj).__qualname__, "attrs": attrs}
    return {"layers": layers, "opaque": opaque}


def _assign(obj: Any, name: str, value: Any) -> None:
    """Set an attribute, in place where possible: the env may hold other references to
    the same array or Generator, and those must see the restored value too."""
    current = getattr(obj, name, None)
    if isinstance(current, np.random.Generator) and isinstance(value, np.random.Generator):
        current.bit_generator.state = value.bit_generator.state
    elif (
        isinstance(current, np.ndarray)
        and isinstance(value, np.ndarray)
        and current.flags.writeable
        and current.shape == value.shape
        and current.dtype == value.dtype
    ):
        current[...] = value
    elif isinstance(current, deque) and isinstance(value, deque) and current.maxlen == value.maxlen:
        current.clear()
        current.extend(value)
    else:
        setattr(obj, name, value)


def restore_env(env: EnvLike, snapshot: dict[str, Any]) -> None:
    """Put a freshly made (and reset) env stack back into the snapshot's state.

    Only the plain-data attributes are restored; when the snapshot lists opaque ones
    the caller must start new episodes (``env.reset()`` without a seed continues the restored RNGs).
    """
    layers = dict(env_layers(env))
    saved = snapshot["layers"]
    mismatch = sorted(set(layers) ^ set(saved)) or [
        p for p in saved if type(layers[p]).__qualname__ != saved[p]["type"]
    ]
    if mismatch:
        raise RunDirError(f"the checkpoint's environment does not match this one (at {mismatch[0]})")
    for path, layer in saved.items():
        for name, data in layer["attrs"].items():
            _assign(layers[path], name, decode(data))
