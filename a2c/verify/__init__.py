"""Gradient verification: the trainer's loss gradients computed three independent ways.

1. ``tape``: ``tf.GradientTape`` through the project's own model and loss code (float64);
2. ``symbolic``: SymPy differentiates the loss built from the model's own layers;
3. ``numeric``: central finite differences in float64.

They are compared pairwise for every parameter tensor and loss term, with
documented tolerances ([`a2c.verify.report`][a2c.verify.report]). Entry points:

    from a2c.verify import verify_model, verify_seed000, seed000_symmetry
    report = verify_model()              # default CartPole model, A2C losses
    report.passed; print(report.table()); report.plot("errors.png"); report.to_json()
    verify_conv_model(model); verify_tiny_conv()   # convolutional models (a2c.verify.conv)

Names are imported lazily so that ``a2c --help`` does not load TensorFlow or SymPy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "verify_model": "a2c.verify.check",
    "kink_point": "a2c.verify.check",
    "verify_seed000": "a2c.verify.seed000",
    "seed000_symmetry": "a2c.verify.seed000",
    "seed000_point": "a2c.verify.seed000",
    "SeedPoint": "a2c.verify.seed000",
    "Report": "a2c.verify.report",
    "Row": "a2c.verify.report",
    "Tolerance": "a2c.verify.report",
    "Point": "a2c.verify.point",
    "LossSpec": "a2c.verify.point",
    "make_point": "a2c.verify.point",
    "describe": "a2c.verify.network",
    "load_actor_critic": "a2c.verify.network",
    "default_model": "a2c.verify.network",
    "verify_conv_model": "a2c.verify.conv",
    "verify_tiny_conv": "a2c.verify.conv",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'a2c.verify' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
