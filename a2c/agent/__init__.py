"""Layer 3, the agent's maths: model, distributions, policy, returns, losses, optimizers and the
learner (the one place a training tape is opened)."""
