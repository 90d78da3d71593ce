"""Advantage actor-critic for TensorFlow/Keras 3, with gradients verified three ways.

``from a2c import A2C`` is light: TensorFlow loads when an agent is built. The names
below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    "A2C": "a2c.api.agent",
    "Callback": "a2c.run.callbacks",
    "CallbackList": "a2c.run.callbacks",
    "StopOnReward": "a2c.run.callbacks",
    "Config": "a2c.config.schema",
    "make_config": "a2c.config.resolve",
    "train": "a2c.run.train",
    "resume": "a2c.run.train",
}

__all__ = [
    "A2C",
    "Callback",
    "CallbackList",
    "Config",
    "StopOnReward",
    "__version__",
    "make_config",
    "resume",
    "train",
]

if TYPE_CHECKING:  # pragma: no cover
    from a2c.api.agent import A2C
    from a2c.config.resolve import make_config
    from a2c.config.schema import Config
    from a2c.run.callbacks import Callback, CallbackList, StopOnReward
    from a2c.run.train import resume, train


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'a2c' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
