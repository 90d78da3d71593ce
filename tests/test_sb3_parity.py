"""Our update equals Stable-Baselines3's A2C update on the same batches.

Needs the optional ``bench`` extra (torch + stable-baselines3); skipped without it.
SB3's default A2C policy has separate policy and value MLPs, so this test builds that
architecture in Keras, copies SB3's initial weights into it, and feeds both learners
the batches our collector gathers.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sb3 = pytest.importorskip("stable_baselines3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from a2c.agent.learner import batch_returns, make_optimizer, make_update  # noqa: E402
from a2c.config.resolve import make_config  # noqa: E402
from a2c.envs.make import make_vec_env  # noqa: E402
from a2c.trainers.rollout import RolloutCollector  # noqa: E402


def _keras_twin(policy) -> tuple[keras.Model, list]:
    obs = keras.Input((4,))

    def mlp(prefix, h):
        for i in range(2):
            h = keras.layers.Dense(64, activation="tanh", name=f"{prefix}{i}")(h)
        return h

    logits = keras.layers.Dense(2, name="act")(mlp("pi", obs))
    value = keras.layers.Reshape(())(keras.layers.Dense(1, name="val")(mlp("vf", obs)))
    model = keras.Model(obs, {"logits": logits, "value": value})
    pairs = [
        ("pi0", policy.mlp_extractor.policy_net[0]),
        ("pi1", policy.mlp_extractor.policy_net[2]),
        ("vf0", policy.mlp_extractor.value_net[0]),
        ("vf1", policy.mlp_extractor.value_net[2]),
        ("act", policy.action_net),
        ("val", policy.value_net),
    ]
    for name, linear in pairs:
        model.get_layer(name).set_weights([linear.weight.detach().numpy().T, linear.bias.detach().numpy()])
    return model, pairs


def test_update_matches_sb3_a2c():
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec_env

    torch.manual_seed(0)
    agent = A2C("MlpPolicy", sb3_vec_env("CartPole-v1", n_envs=8, seed=0), ent_coef=0.0, seed=0, device="cpu")
    policy = agent.policy
    model, pairs = _keras_twin(policy)
    cfg = make_config(
        {"lr": 7e-4, "lr_schedule": "constant", "ent_coef": 0.0, "reward_scale": 1.0, "n_envs": 8}
    )  # SB3 defaults
    update = make_update(model, make_optimizer(cfg), cfg)
    collector = RolloutCollector(make_vec_env("CartPole-v1", 8), model, 5, seed=0)
    for _ in range(20):
        batch, _ = collector.collect()
        returns = torch.tensor(batch_returns(model, tf.nest.map_structure(tf.constant, batch), cfg).numpy().reshape(-1))
        mask = torch.tensor(batch.valid.reshape(-1))
        obs = torch.tensor(batch.obs[:-1].reshape(-1, 4))
        values, log_prob, _ = policy.evaluate_actions(obs, torch.tensor(batch.actions.reshape(-1)).long())
        values = values.flatten()
        advantages = (returns - values).detach()
        loss = (-(advantages * log_prob * mask).sum() + 0.5 * (((returns - values) ** 2) * mask).sum()) / mask.sum()
        policy.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        policy.optimizer.step()
        update(batch)
    for name, linear in pairs:
        np.testing.assert_allclose(model.get_layer(name).kernel.numpy(), linear.weight.detach().numpy().T, atol=1e-6)
