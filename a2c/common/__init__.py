"""The ground floor: errors, atomic file writes and TensorFlow start-up, shared by every layer."""
