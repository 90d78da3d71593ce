"""Layer 1, no TensorFlow: the run's hyperparameters (schema), the tuned presets, and how they are layered."""
