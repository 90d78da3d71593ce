"""The activations as float64 numpy functions: the finite differences' own, not SymPy's or TF's.

[`a2c.verify.numeric`][a2c.verify.numeric] evaluates the network with them; [`a2c.verify.point`][a2c.verify.point]
uses them only to keep check points off ReLU/ELU kinks. A module of their own so
that the point need not import the numeric method (which imports the point), and
so that [`a2c.verify.network`][a2c.verify.network], which the tape and symbolic sides build on, offers
them no numpy forward pass: methods sharing activations would share their bugs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # the same function, no overflow in exp(-x)


#: Keyed like [`a2c.verify.network.SUPPORTED_ACTIVATIONS`][a2c.verify.network.SUPPORTED_ACTIVATIONS].
NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
}
