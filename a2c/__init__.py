"""Advantage actor-critic for TensorFlow/Keras 3, with gradients verified three ways."""

__version__ = "0.2.0"
