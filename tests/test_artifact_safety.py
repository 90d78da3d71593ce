"""Files from someone else (issue 31): a ``.keras`` file is checked before Keras reads it and loaded
with Keras' safe mode forced on (a Lambda layer is refused in one line, exit 2, and its code never
runs); ``a2c evaluate --help`` says that a SavedModel is a program; run directories hold no pickle."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

from a2c.agent.model import build_actor_critic, model_for
from a2c.artifacts.saving import A2C_LAYERS, MODEL_LAYERS, keras_safe_mode, load_keras_model, save_model
from a2c.cli.main import main
from a2c.common.errors import ModelFileError
from a2c.config.resolve import make_config
from a2c.envs.spaces import ObsSpec
from a2c.run.checkpoint import CHECKPOINT_DIR
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import train

REPO = Path(__file__).resolve().parents[1]


def lambda_model(tmp_path: Path, marker: Path) -> Path:
    """A CartPole-sized actor-critic with a Lambda layer whose code writes ``marker`` when it runs
    (as it does while Keras rebuilds the model, if Keras lets it)."""
    run = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    obs = keras.Input((4,), name="obs")
    h = keras.layers.Lambda(run, name="innocent")(obs)
    logits = keras.layers.Dense(2, name="policy_logits")(h)
    value = keras.layers.Reshape((), name="value_squeeze")(keras.layers.Dense(1, name="value")(h))
    model = keras.Model(obs, {"logits": logits, "probs": keras.layers.Softmax(name="policy")(logits), "value": value})
    path = tmp_path / "lambda.keras"
    model.save(path)
    marker.unlink()  # building the model ran it once
    return path


def rewrite_config(source: Path, target: Path, change) -> Path:
    """A copy of the ``.keras`` archive ``source`` with its config.json passed through ``change``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    return target


def test_every_model_a2c_builds_passes_the_layer_check(tmp_path):
    models = {
        "mlp": build_actor_critic(4, 2),
        "gaussian, normalised": build_actor_critic(
            3, 2, policy="gaussian", obs_norm=True, action_bounds=([-1.0, -1.0], [1.0, 1.0])
        ),
        "scaled float64": build_actor_critic(4, 2, obs_scale=[1.0, 2.0, 3.0, 4.0], dtype="float64"),
        "frames": build_actor_critic(ObsSpec((4, 84, 84), "uint8"), 6, trunk="nature_cnn"),
        **{
            name: model_for(make_config({"net_arch": arch, **extra}), obs, actions)
            for name, arch, obs, actions, extra in (
                ("multi-discrete", "shared", spaces.Box(-1, 1, (3,)), spaces.MultiDiscrete([2, 3]), {}),
                ("multi-binary, separate", "separate", spaces.Box(-1, 1, (3,)), spaces.MultiBinary(4), {}),
                (
                    "channels-last grid",
                    "shared",
                    spaces.Box(0, 1, (10, 10, 4), bool),
                    spaces.Discrete(3),
                    {"trunk": "nature_cnn", "hidden_sizes": (128,)},
                ),
                (
                    "dict",
                    "shared",
                    spaces.Dict(
                        {"image": spaces.Box(0, 255, (10, 10, 3), np.uint8), "vector": spaces.Box(-1, 1, (2,))}
                    ),
                    spaces.Discrete(2),
                    {"trunk": "nature_cnn", "normalize_obs": True},
                ),
            )
        },
    }
    registered = {name.split(">")[1] for name in A2C_LAYERS}
    for name, model in models.items():
        assert {type(layer).__name__ for layer in model.layers} <= MODEL_LAYERS | registered, name
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.keras"
        save_model(model, path)
        loaded = load_keras_model(path)  # the check, then Keras in safe mode
        for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_evaluate_refuses_a_lambda_layer_in_one_line_and_never_runs_it(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    path = lambda_model(tmp_path, marker)
    with pytest.raises(ModelFileError, match=r"refusing to load model .*a Lambda layer \('innocent'\)"):
        load_keras_model(path)  # the hook every loader calls (a2c evaluate, a2c export, the object API)
    assert main(["evaluate", str(path), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("a2c evaluate: error: refusing to load model"), err
    assert "trust its source" in lines[0] and "Traceback" not in err
    assert not marker.exists()


def test_keras_safe_mode_stays_on_after_unsafe_deserialization_was_enabled(tmp_path):
    """Keras lets ``enable_unsafe_deserialization()`` override ``load_model(safe_mode=True)``;
    a2c's loads force it back on."""
    from keras.src.saving.serialization_lib import in_safe_mode

    marker = tmp_path / "code-ran"
    path = lambda_model(tmp_path, marker)
    before = in_safe_mode()
    keras.config.enable_unsafe_deserialization()
    try:
        with keras_safe_mode(), pytest.raises(ValueError, match="safe_mode"):
            keras.saving.load_model(path, compile=False, safe_mode=True)
        assert not marker.exists()
        keras.saving.load_model(path, compile=False, safe_mode=True)  # what the global switch does without it
        assert marker.read_text() == "ran"
    finally:
        from keras.src.backend.common import global_state

        global_state.set_global_attribute("safe_mode_saving", before)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["config"]["layers"][1].update(class_name="TFSMLayer", module="keras.layers"),
            r"a TFSMLayer layer \('trunk_0'\)",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"]["kernel_initializer"].update(module="os", class_name="system"),
            "refers to the Python module 'os'",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"].update(
                activation={"class_name": "__lambda__", "config": {"code": "AA=="}}
            ),
            r"Python code \(a lambda\)",
        ),
        (
            lambda c: c["config"]["layers"][2].update(module="os", registered_name="a2c>ObsNormalization"),
            "refers to the Python module 'os'",
        ),
    ],
)
def test_layers_and_modules_outside_an_a2c_model_are_refused_before_keras_reads_them(tmp_path, change, message):
    good = tmp_path / "good.keras"
    save_model(build_actor_critic(4, 2), good)
    bad = rewrite_config(good, tmp_path / "bad.keras", change)
    with pytest.raises(ModelFileError, match=message):
        load_keras_model(bad)


def test_evaluate_help_says_a_saved_model_is_a_program(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a SavedModel is a TensorFlow program" in text and "trusted source" in text


# ------------------------------------------------------------------------------------ no pickle

PICKLE_START = re.compile(rb"\A\x80[\x02-\x05]")  # the PROTO opcode every pickle of protocol 2-5 starts with
PICKLE_SUFFIXES = {".pkl", ".pickle", ".npy", ".npz", ".joblib", ".dill"}


def pickles_in(run_dir: Path) -> list[str]:
    """Everything in ``run_dir`` that is, or holds, a pickle: files by name or first bytes, members of
    zip archives (.keras), and the string tensors of TensorFlow checkpoints (the host state must be JSON)."""
    found = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = str(path.relative_to(run_dir))
        if path.suffix in PICKLE_SUFFIXES or PICKLE_START.match(path.read_bytes()[:2]):
            found.append(rel)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                found += [f"{rel}:{m}" for m in z.namelist() if PICKLE_START.match(z.read(m)[:2])]
        if path.name.endswith(".index") and path.parent.name == CHECKPOINT_DIR:
            reader = tf.train.load_checkpoint(str(path.with_suffix("")))
            for name, dtype in reader.get_variable_to_dtype_map().items():
                if dtype == tf.string:
                    value = reader.get_tensor(name)
                    if "py_state" in name:
                        json.loads(value)  # the host state is JSON, nothing else
                    if PICKLE_START.match(bytes(value)[:2]):
                        found.append(f"{rel}:{name}")
    return found


def test_run_directories_hold_no_pickle(shared_run_dir, tmp_path):
    """A finished run (model, SavedModel, checkpoints) and a stopped one, whose checkpoint carries the
    envs' snapshot and the keep-best weights: no pickle anywhere; and the package never imports one."""
    cfg = make_config(
        {
            "total_steps": 600,
            "n_envs": 4,
            "n_steps": 5,
            "eval_every": 200,
            "eval_episodes": 2,
            "keep_best": True,
            "progress": False,
            "run_dir": str(tmp_path / "stopped"),
        }
    )

    def stop(update: int, step: int) -> None:
        if update == 20:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(cfg, quiet=True, callback=stop)
    for run_dir in (shared_run_dir, tmp_path / "stopped"):
        assert list((run_dir / CHECKPOINT_DIR).glob("*.index")), run_dir
        assert pickles_in(run_dir) == [], run_dir
    copy = tmp_path / "with_pickle"
    shutil.copytree(tmp_path / "stopped", copy)
    import pickle

    (copy / "extra.bin").write_bytes(pickle.dumps({"a": 1}))
    assert pickles_in(copy) == ["extra.bin"]  # the check does see one
    sources = [
        p
        for p in (REPO / "a2c").rglob("*.py")
        if re.search(r"^\s*(import|from) (pickle|cloudpickle|dill|joblib)\b", p.read_text(), re.M)
    ]
    assert sources == []


def test_a2c_load_never_deserialises_the_saved_model_file(tmp_path):
    """A saved agent's weights come from its TensorFlow checkpoint: a model.keras swapped for one
    that runs code is never read, and the agent predicts as the saved one did."""
    import zipfile

    import numpy as np

    from a2c import A2C

    agent = A2C("CartPole-v1", run_dir=tmp_path / "run", eval_every=0, final_eval_episodes=0, quiet=True)
    saved = agent.save(tmp_path / "agent.zip")
    marker = tmp_path / "code-ran"
    evil = lambda_model(tmp_path, marker)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = evil.read_bytes() if item.filename == "model.keras" else src.read(item.filename)
            dst.writestr(item, data)
    loaded = A2C.load(tampered, run_dir=tmp_path / "loaded", quiet=True)
    obs = np.zeros((4, 4), np.float32)
    assert not marker.exists()
    assert np.array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])


def test_a_gaussian_model_saved_by_0_1_0_still_loads(tmp_path):
    """0.1.0 kept a2c's layers in the module a2c.model, and its .keras files say so."""
    model = build_actor_critic(3, 2, policy="gaussian", obs_norm=True, action_bounds=([-1.0, -1.0], [1.0, 1.0]))
    save_model(model, tmp_path / "new.keras")

    def old_module(config):
        text = json.dumps(config).replace('"a2c.agent.model"', '"a2c.model"')
        config.clear()
        config.update(json.loads(text))

    old = rewrite_config(tmp_path / "new.keras", tmp_path / "old.keras", old_module)
    assert '"a2c.model"' in zipfile.ZipFile(old).read("config.json").decode()
    loaded = load_keras_model(old)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
