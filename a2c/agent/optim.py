"""RMSprop as PyTorch (and so Stable-Baselines3's A2C) runs it.

Keras' RMSprop divides by ``sqrt(v + eps)``; PyTorch divides by ``sqrt(v) + eps``.
With A2C's eps = 1e-5 and gradients clipped to a global norm of 0.5, many squared
per-parameter gradients are below 1e-5, so the two forms take different steps for the
same hyperparameters: Keras' form caps a small gradient's step at ``lr * g / sqrt(eps)``.
This subclass only moves epsilon, so that "the same hyperparameters as SB3" means the
same update (checked: identical weights to 1e-7 after 30 updates on the same batches).
Which form trains a given network better is an empirical question; results/tuning.md
records what was measured.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="a2c")
class RMSpropEpsOutside(keras.optimizers.RMSprop):
    """RMSprop with ``w -= lr * g / (sqrt(v) + eps)``; no momentum, not centered."""

    def __init__(
        self, learning_rate=7e-4, rho: float = 0.99, epsilon: float = 1e-5, name: str = "rmsprop_eps_outside", **kwargs
    ) -> None:
        super().__init__(
            learning_rate=learning_rate, rho=rho, epsilon=epsilon, momentum=0.0, centered=False, name=name, **kwargs
        )

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self._velocities[self._get_variable_index(variable)]
        self.assign(velocity, self.rho * velocity + (1.0 - self.rho) * ops.square(gradient))
        self.assign_sub(variable, lr * gradient / (ops.sqrt(velocity) + self.epsilon))


@keras.saving.register_keras_serializable(package="a2c")
class RMSpropTFLike(keras.optimizers.RMSprop):
    """RMSprop as TensorFlow 1 (and so the A2C paper's code and the zoo's Atari runs, SB3's
    ``RMSpropTFLike``) ran it: ``w -= lr * g / sqrt(v + eps)`` with ``v`` starting at ONES.

    Starting the average at ones keeps the first updates small (lr * g instead of
    lr * g / |g|), which the convolutional Atari networks rely on; Keras' own RMSprop
    starts it at zeros.
    """

    def __init__(
        self, learning_rate=7e-4, rho: float = 0.99, epsilon: float = 1e-5, name: str = "rmsprop_tf_like", **kwargs
    ) -> None:
        super().__init__(
            learning_rate=learning_rate, rho=rho, epsilon=epsilon, momentum=0.0, centered=False, name=name, **kwargs
        )

    def build(self, var_list) -> None:
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity", initializer="ones")
        self._momentums: list[Any] = []  # empty, as RMSprop.build leaves them (momentum=0, not centered)
        self._average_gradients: list[Any] = []

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self._velocities[self._get_variable_index(variable)]
        self.assign(velocity, self.rho * velocity + (1.0 - self.rho) * ops.square(gradient))
        self.assign_sub(variable, lr * gradient / ops.sqrt(velocity + self.epsilon))
