import keras
import numpy as np
import pytest

from a2c.agent.model import (
    LOGITS_LAYER,
    VALUE_LAYER,
    NarrowDense,
    build_actor_critic,
    n_actions_of,
    obs_spec_of,
    trunk_layers,
)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_output_shapes_and_probabilities(dtype):
    model = build_actor_critic(6, 3, (32, 16), "relu", dtype=dtype)
    out = model(np.random.default_rng(0).normal(size=(5, 6)).astype(dtype))
    assert out["logits"].shape == (5, 3) and out["probs"].shape == (5, 3) and out["value"].shape == (5,)
    assert all(t.dtype == dtype for t in out.values())
    np.testing.assert_allclose(out["probs"].numpy().sum(axis=1), 1.0, rtol=1e-6)
    assert [layer.units for layer in trunk_layers(model)] == [32, 16]
    assert obs_spec_of(model).shape == (6,) and n_actions_of(model) == 3


def test_orthogonal_gains_and_seeding():
    model = build_actor_critic(4, 2, (64, 64), seed=3)
    w = model.get_layer("trunk_1").kernel.numpy()
    np.testing.assert_allclose(w.T @ w, 2.0 * np.eye(64), atol=1e-4)  # gain sqrt(2)
    assert np.abs(model.get_layer(LOGITS_LAYER).kernel.numpy()).max() < 0.05  # gain 0.01
    assert np.all(model.get_layer(VALUE_LAYER).bias.numpy() == 0)
    same = build_actor_critic(4, 2, (64, 64), seed=3)
    other = build_actor_critic(4, 2, (64, 64), seed=4)
    assert np.array_equal(w, same.get_layer("trunk_1").kernel.numpy())
    assert not np.array_equal(w, other.get_layer("trunk_1").kernel.numpy())


def test_initial_policy_is_near_uniform():
    model = build_actor_critic(4, 2)
    probs = model(np.random.default_rng(0).normal(size=(10, 4)).astype("float32"))["probs"].numpy()
    np.testing.assert_allclose(probs, 0.5, atol=0.02)


def test_observation_scaling_layer():
    from a2c.envs.make import make_env
    from a2c.envs.spaces import feature_space, observation_scale

    env, space = make_env("Acrobot-v1")
    scale = observation_scale(feature_space(space))
    np.testing.assert_allclose(scale, [1, 1, 1, 1, 1 / (4 * np.pi), 1 / (9 * np.pi)], rtol=1e-6)
    env, space = make_env("CartPole-v1")
    assert observation_scale(feature_space(space))[1] == 1.0  # unbounded velocity: left alone
    scaled = build_actor_critic(6, 3, (8,), seed=1, obs_scale=scale)
    plain = build_actor_critic(6, 3, (8,), seed=1)
    obs = np.random.default_rng(0).normal(size=(4, 6)).astype("float32") * 10
    np.testing.assert_allclose(scaled(obs)["value"].numpy(), plain(obs * np.float32(scale))["value"].numpy(), rtol=1e-5)


def test_nature_cnn_trunk_takes_uint8_frame_stacks():
    from a2c.agent.model import PIXEL_SCALE, compiles_with_xla, conv_layers
    from a2c.envs.spaces import ObsSpec

    model = build_actor_critic(ObsSpec((4, 84, 84), "uint8"), 6, (512,), "relu", trunk="nature_cnn", seed=0)
    assert model.inputs[0].dtype == "uint8" and obs_spec_of(model) == ObsSpec((4, 84, 84), "uint8")
    assert [layer.output.shape[1:] for layer in conv_layers(model)] == [(20, 20, 32), (9, 9, 64), (7, 7, 64)]
    assert [layer.units for layer in trunk_layers(model)] == [512] and not compiles_with_xla(model)
    assert compiles_with_xla(build_actor_critic(4, 2))
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    # the pixels are scaled inside: the same network on float frames already divided by 255
    twin = build_actor_critic(ObsSpec((4, 84, 84), "float32"), 6, (512,), "relu", trunk="nature_cnn", seed=0)
    twin.set_weights(model.get_weights())
    scaled = keras.ops.convert_to_numpy(
        twin.get_layer("obs_channels_last")(np.float32(frames) * np.float32(PIXEL_SCALE))
    )
    inner = keras.Model(twin.get_layer("obs_channels_last").output, twin.output)
    np.testing.assert_allclose(model(frames)["value"], inner(scaled)["value"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, needle", [((4, 2, 2), "too small"), ((84, 84), "(frames, height, width)")])
def test_nature_cnn_refuses_frames_it_cannot_take(shape, needle):
    from a2c.envs.spaces import ObsSpec

    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        build_actor_critic(ObsSpec(shape, "uint8"), 2, trunk="nature_cnn")


def test_channels_last_and_channels_first_frames_give_the_same_outputs():
    """(H, W, C) images are read channels-last inside the model (no Permute), (C, H, W) stacks
    are permuted to it: built with the same seed, the two models agree on transposed frames."""
    from a2c.envs.spaces import ObsSpec, image_layout

    assert image_layout((84, 84, 3)) == "channels_last" and image_layout((4, 84, 84)) == "channels_first"
    assert image_layout((10, 10, 4)) == "channels_last" and image_layout((10, 10, 10)) == "channels_first"
    for hw in ((84, 84), (10, 10)):  # the Nature CNN, and the small CNN of frames too small for it
        first = build_actor_critic(ObsSpec((4, *hw), "uint8"), 3, (32,), "relu", trunk="nature_cnn", seed=5)
        last = build_actor_critic(ObsSpec((*hw, 4), "uint8"), 3, (32,), "relu", trunk="nature_cnn", seed=5)
        assert "obs_channels_last" in {layer.name for layer in first.layers}
        assert "obs_channels_last" not in {layer.name for layer in last.layers}
        frames = np.random.default_rng(0).integers(0, 256, (5, 4, *hw), dtype=np.uint8)
        a, b = first(frames), last(np.ascontiguousarray(frames.transpose(0, 2, 3, 1)))
        for key in ("logits", "value"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6)
    small = build_actor_critic(ObsSpec((10, 10, 4), "float32"), 3, (128,), "relu", trunk="nature_cnn")
    convs = [layer for layer in small.layers if layer.name.startswith("conv_") and layer.name != "conv_flatten"]
    assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [(16, (3, 3), (1, 1))]


def test_narrow_dense_is_elementwise_under_xla_and_a_matmul_elsewhere():
    """The same numbers and gradients in eager mode, TensorFlow's graph executor and XLA; only
    XLA gets the multiply-and-sum form (its matmuls of a few columns are slow), the graph a MatMul."""
    import tensorflow as tf

    layer = NarrowDense(3, activation="tanh")
    layer.build((None, 7))
    x = tf.random.stateless_normal([5, 7], seed=[1, 2])

    def value_and_grads(x):
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, [layer.kernel, layer.bias])

    graph = tf.function(value_and_grads, autograph=False)
    xla = tf.function(value_and_grads, autograph=False, jit_compile=True)
    expected = np.tanh(x.numpy() @ layer.kernel.numpy() + layer.bias.numpy())
    results = [value_and_grads(x), graph(x), xla(x)]
    for y, _ in results:
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
    for _, grads in results[1:]:
        for g, g_eager in zip(grads, results[0][1], strict=True):
            np.testing.assert_allclose(g.numpy(), g_eager.numpy(), rtol=1e-5, atol=1e-6)
    graph_ops = {op.type for op in graph.get_concrete_function(x).graph.get_operations()}
    xla_ops = {op.type for op in xla.get_concrete_function(x).graph.get_operations()}
    assert "MatMul" in graph_ops
    assert "MatMul" not in xla_ops and "Sum" in xla_ops


def test_mlp_policy_heads_are_narrow_and_cnn_heads_plain_dense():
    mlp = build_actor_critic(4, 2)
    assert type(mlp.get_layer(LOGITS_LAYER)) is NarrowDense
    assert type(mlp.get_layer(VALUE_LAYER)) is keras.layers.Dense
    from a2c.envs.spaces import ObsSpec

    cnn = build_actor_critic(ObsSpec((2, 12, 12), "uint8"), 3, (8,), "relu", trunk="nature_cnn", convs=((4, 3, 1),))
    assert type(cnn.get_layer(LOGITS_LAYER)) is keras.layers.Dense


def test_bfloat16_precision_computes_the_convolutions_and_trunk_in_bfloat16_over_float32_weights():
    """Mixed precision: bfloat16 layers up to the trunk, float32 weights, heads, outputs and gradients;
    the outputs are the float32 model's to bfloat16's rounding."""
    import tensorflow as tf

    from a2c.agent.model import conv_layers
    from a2c.envs.spaces import ObsSpec

    spec = ObsSpec((4, 36, 36), "uint8")
    f32 = build_actor_critic(spec, 4, (32,), "relu", trunk="nature_cnn", seed=3)
    b16 = build_actor_critic(spec, 4, (32,), "relu", trunk="nature_cnn", seed=3, precision="bfloat16")
    assert all(layer.compute_dtype == "bfloat16" for layer in [*conv_layers(b16), *trunk_layers(b16)])
    assert b16.get_layer(LOGITS_LAYER).compute_dtype == b16.get_layer(VALUE_LAYER).compute_dtype == "float32"
    assert all(v.dtype == "float32" for v in b16.weights)
    for a, b in zip(f32.get_weights(), b16.get_weights()):
        np.testing.assert_array_equal(a, b)  # the same seeded initial weights
    frames = np.random.default_rng(0).integers(0, 256, (6, 4, 36, 36), dtype=np.uint8)
    out, ref = b16(frames), f32(frames)
    assert all(t.dtype == "float32" for t in out.values())
    np.testing.assert_allclose(out["value"], ref["value"], rtol=0.05, atol=0.02)
    np.testing.assert_allclose(out["probs"], ref["probs"], atol=0.01)
    assert not np.array_equal(out["value"], ref["value"])  # computed in bfloat16, not float32
    with tf.GradientTape() as tape:
        out = b16(frames)
        loss = tf.reduce_sum(out["value"]) + tf.reduce_sum(out["logits"] ** 2)
    assert all(g.dtype == tf.float32 for g in tape.gradient(loss, b16.trainable_variables))
    with pytest.raises(ValueError, match="convolutions"):
        build_actor_critic(4, 2, precision="bfloat16")
