"""Dict observations (issue 26): one input per key (image keys through a CNN, vector keys
flattened and normalised), buffers with one array per key (uint8 images stay uint8), a SavedModel
that takes a dict of tensors, and one-line refusals of what a Dict may not hold."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.model import obs_norms_of, obs_spec_of
from a2c.artifacts.export import read_export_metadata
from a2c.artifacts.loading import evaluate_path, load_model_any
from a2c.common.errors import EnvError
from a2c.config.resolve import make_config
from a2c.envs.make import make_vec_env
from a2c.envs.spaces import DictSpec, ObsSpec
from a2c.run.train import train
from a2c.trainers.rollout import RolloutCollector

ENV = "A2CTest/DictObs-v0"


@functools.cache
def _dict_run(root):
    cfg = make_config(
        {
            "env_id": ENV,
            "total_steps": 6_000,
            "n_envs": 8,
            "n_steps": 5,
            "lr": 2e-3,
            "hidden_sizes": (64,),
            "activation": "relu",
            "gamma": 0.5,  # a contextual bandit
            "normalize_advantage": True,
            "normalize_obs": True,
            "eval_every": 0,
            "final_eval_episodes": 10,
            "progress": False,
            "run_dir": str(root / "dict"),
        }
    )
    return train(cfg, quiet=True)


@pytest.fixture(scope="module")
def dict_run(tmp_path_factory):
    return _dict_run(tmp_path_factory.mktemp("dict"))


def test_dict_model_has_an_input_per_key_a_cnn_for_the_image_and_normalises_the_vector(dict_run):
    model = dict_run.model
    assert obs_spec_of(model) == DictSpec((("image", ObsSpec((10, 10, 3), "uint8")), ("vec", ObsSpec((2,)))))
    names = {layer.name for layer in model.layers}
    assert {"conv_0__image", "obs_norm__vec", "obs_concat"} <= names
    assert set(obs_norms_of(model)) == {"vec"}
    assert float(obs_norms_of(model)["vec"].count.numpy()) > 1000  # updated from the rollouts
    # a random policy scores 5 of 10; both keys are needed to do better than 7.5
    assert dict_run.summary["eval_mean_return"] > 6.0, dict_run.summary


def test_rollout_buffers_keep_one_array_per_key_and_uint8_images():
    cfg = make_config({"env_id": ENV, "n_envs": 2, "n_steps": 3})
    from a2c.agent.model import model_for
    from a2c.envs.make import env_spaces

    env = make_vec_env(ENV, 2)
    collector = RolloutCollector(env, model_for(cfg, *env_spaces(ENV)), 3, seed=0)
    batch, _ = collector.collect()
    assert set(batch.obs) == {"image", "vec"}
    assert batch.obs["image"].dtype == np.uint8 and batch.obs["image"].shape == (4, 2, 10, 10, 3)
    assert batch.obs["vec"].dtype == np.float32 and batch.obs["vec"].shape == (4, 2, 2)
    env.close()


def test_saved_model_takes_a_dict_and_evaluates_as_the_keras_file(dict_run):
    run = dict_run.run_dir
    meta = read_export_metadata(run / "saved_model")
    assert meta["obs_shape"] == {"image": [10, 10, 3], "vec": [2]}
    assert meta["obs_dtype"] == {"image": "uint8", "vec": "float32"}
    loaded = tf.saved_model.load(str(run / "saved_model"))
    obs = {"image": np.zeros((3, 10, 10, 3), np.uint8), "vec": np.array([[0.5, 0], [-0.5, 0], [0.9, 0.1]], np.float32)}
    out = loaded.serve({k: tf.constant(v) for k, v in obs.items()})
    assert out["probs"].shape == (3, 2) and out["value"].shape == (3,)
    keras_eval = evaluate_path(run / "model.keras", episodes=6)[0].returns
    np.testing.assert_allclose(keras_eval, evaluate_path(run / "saved_model", episodes=6)[0].returns)
    assert isinstance(load_model_any(run / "saved_model").obs_spec, DictSpec)


def test_a2c_predict_takes_a_dict(dict_run):
    from a2c.api.agent import A2C

    agent = A2C(
        ENV,
        hidden_sizes=(64,),
        activation="relu",
        normalize_obs=True,
        quiet=True,
        run_dir=dict_run.run_dir.parent / "api",
    )
    agent.model.set_weights(dict_run.model.get_weights())
    one = {"image": np.zeros((10, 10, 3), np.uint8), "vec": np.array([0.8, 0.0], np.float32)}
    action, _ = agent.predict(one)
    assert agent.action_space.contains(action)
    batch, _ = agent.predict({k: np.stack([v, v]) for k, v in one.items()})
    assert batch.shape == (2,)
    with pytest.raises(ValueError, match="keys"):
        agent.predict({"image": one["image"]})
    saved = agent.save(dict_run.run_dir.parent / "agent.zip")
    again = A2C.load(saved, run_dir=dict_run.run_dir.parent / "again", quiet=True)
    assert again.predict(one)[0] == action


@pytest.mark.parametrize(
    "env_id, needle",
    [
        (
            "A2CTest/DictOfTuple-v0",
            "has observation key 'bag' of space Tuple(Discrete(2)); a Dict observation space may hold Box and Discrete",
        ),
        ("A2CTest/SequenceObs-v0", "has observation space Sequence(Discrete(3)"),
    ],
)
def test_unsupported_observation_spaces_are_one_line(env_id, needle):
    with pytest.raises(EnvError, match=re.escape(needle)):
        make_vec_env(env_id, 2)


def test_verify_refuses_dict_models_in_one_line(dict_run):
    from a2c.common.errors import ModelFileError
    from a2c.verify.network import describe

    with pytest.raises(ModelFileError, match="Dict observations \\(keys 'image', 'vec'\\)"):
        describe(dict_run.model)


def test_tuple_observations_train_as_a_dict_keyed_by_position(tmp_path):
    from a2c.api.agent import A2C

    cfg = make_config(
        {
            "env_id": "A2CTest/TupleObs-v0",
            "total_steps": 1_000,
            "eval_every": 0,
            "final_eval_episodes": 2,
            "progress": False,
            "run_dir": str(tmp_path / "tuple"),
        }
    )
    result = train(cfg, quiet=True)
    assert obs_spec_of(result.model) == DictSpec((("0", ObsSpec((2,))), ("1", ObsSpec((3,)))))  # one-hot
    run = result.run_dir
    keras_eval = evaluate_path(run / "model.keras", episodes=2)[0].returns
    np.testing.assert_allclose(keras_eval, evaluate_path(run / "saved_model", episodes=2)[0].returns)
    agent = A2C("A2CTest/TupleObs-v0", quiet=True, run_dir=tmp_path / "api")
    action, _ = agent.predict((np.array([0.5, 0.0], np.float32), 2))
    assert agent.action_space.contains(action)
