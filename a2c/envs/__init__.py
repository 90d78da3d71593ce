"""Layer 2: environments: what the agent accepts (spaces), making them, Atari, TensorFlow ports, env state."""
