"""Separate actor and critic networks (``net_arch = "separate"``, issue 26): the model, every
trainer, the artifacts and the verifier."""

from __future__ import annotations

import numpy as np
import pytest

from a2c.agent.model import build_actor_critic, model_for, net_arch_of, trunk_layers
from a2c.artifacts.loading import evaluate_path
from a2c.config.resolve import make_config
from a2c.envs.make import env_spaces
from a2c.verify import verify_model
from a2c.verify.network import describe


def cartpole_model(net_arch, seed=0):
    cfg = make_config({"env_id": "CartPole-v1", "net_arch": net_arch, "seed": seed})
    return model_for(cfg, *env_spaces("CartPole-v1"))


def test_separate_model_has_a_trunk_per_head_and_shared_is_unchanged():
    shared, separate = cartpole_model("shared"), cartpole_model("separate")
    assert [layer.name for layer in trunk_layers(shared)] == ["trunk_0", "trunk_1"]
    assert net_arch_of(shared) == "shared" and net_arch_of(separate) == "separate"
    assert [layer.name for layer in trunk_layers(separate, "pi_")] == ["pi_0", "pi_1"]
    assert [layer.name for layer in trunk_layers(separate, "vf_")] == ["vf_0", "vf_1"]
    assert not trunk_layers(separate)
    assert separate.get_layer("value").input is separate.get_layer("vf_1").output
    assert separate.get_layer("policy_logits").input is separate.get_layer("pi_1").output
    # 4 -> 64 -> 64 twice, plus the heads: 4,675 shared parameters become 9,155
    assert (shared.count_params(), separate.count_params()) == (4675, 9155)
    with pytest.raises(ValueError, match="net_arch must be one of|net_arch"):
        make_config({"net_arch": "split"})


@pytest.mark.parametrize("method", ["chain", "expanded"])
def test_verify_passes_on_separate_networks_and_the_heads_do_not_cross(method):
    if method == "chain":
        model = cartpole_model("separate")
    else:
        model = build_actor_critic(2, 2, (2,), "tanh", seed=3, net_arch="separate")
    spec = describe(model)
    assert spec.separate and [t.name for t in spec.value_trunk] == ["vf_0", "vf_1"][: len(spec.value_trunk)]
    report = verify_model(model, batch=16, seed=1, method=method)
    assert report.passed, report.table()
    assert "| value" in report.title
    for name in ("tape", "symbolic", "numeric"):
        grads = report.gradients[name]
        # the value loss never reaches the policy's layers, nor the policy loss the value's
        assert not np.any(grads["value_loss"]["pi_0/kernel"]) and not np.any(grads["policy_loss"]["vf_0/kernel"])
        assert np.any(grads["value_loss"]["vf_0/kernel"]) and np.any(grads["policy_loss"]["pi_0/kernel"])


def test_verify_separate_gaussian_with_normalised_observations():
    model = build_actor_critic(3, 2, (4,), "tanh", seed=2, policy="gaussian", obs_norm=True, net_arch="separate")
    assert verify_model(model, batch=8, seed=0).passed


def test_standard_run_exports_and_evaluates_a_separate_network(tmp_path):
    from a2c.run.train import train

    cfg = make_config(
        {
            "env_id": "CartPole-v1",
            "net_arch": "separate",
            "total_steps": 2_000,
            "eval_every": 0,
            "final_eval_episodes": 2,
            "progress": False,
            "run_dir": str(tmp_path / "run"),
        }
    )
    result = train(cfg, quiet=True)
    assert net_arch_of(result.model) == "separate"
    keras_eval = evaluate_path(result.run_dir / "model.keras", episodes=2)[0].returns
    np.testing.assert_allclose(keras_eval, evaluate_path(result.run_dir / "saved_model", episodes=2)[0].returns)


def test_population_members_with_separate_networks_learn_as_their_single_fused_runs():
    from test_population import _identity

    _identity(xla=False, updates=5, net_arch="separate")


def test_nature_cnn_shares_its_convolutions_and_verify_checks_both_chains():
    from a2c.envs.spaces import ObsSpec
    from a2c.verify import conv

    model = build_actor_critic(ObsSpec((4, 36, 36), "uint8"), 3, (8,), "relu", trunk="nature_cnn", net_arch="separate")
    flat = model.get_layer("conv_flatten").output
    assert model.get_layer("pi_0").input is flat and model.get_layer("vf_0").input is flat
    net = conv.describe_conv(model)
    assert net.value_dense == (("vf_0", "relu"),) and net.dense[0] == ("pi_0", "relu")
    report = conv.verify_conv_model(model, samples=3)
    assert report.passed, report.table()
    # tape, SymPy chain rule and finite differences on every parameter of the tiny separate net
    tiny = conv.verify_tiny_conv(seed=1, net_arch="separate")
    assert tiny.passed, tiny.table()
    assert {"vf_0/kernel", "pi_0/kernel", "conv_0/kernel"} <= {row.param for row in tiny.rows}
