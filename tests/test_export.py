"""SavedModel export: round trip, a process without a2c (or Keras), atomic replacement, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from a2c.agent.model import build_actor_critic  # noqa: E402
from a2c.artifacts.export import (
    GREEDY_ENDPOINT,
    METADATA_FILE,
    SERVE_ENDPOINT,
    export_run,
    export_saved_model,
    read_export_metadata,
)  # noqa: E402
from a2c.artifacts.saving import save_model  # noqa: E402
from a2c.cli.main import main  # noqa: E402
from a2c.common.errors import ModelFileError  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(shared_run_dir: Path) -> Path:
    return shared_run_dir


def observations(obs_dim: int, n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(scale=2.0, size=(n, obs_dim)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, Path, Path]:
    """A model with non-trivial weights, its .keras file and its SavedModel."""
    model = build_actor_critic(4, 3, (16, 8), "tanh", seed=3)
    for v in model.trainable_variables:  # move away from the near-uniform initial policy
        v.assign(v + tf.random.stateless_normal(v.shape, seed=[1, 2], stddev=0.5))
    root = tmp_path_factory.mktemp("export")
    save_model(model, root / "model.keras")
    export_saved_model(model, root / "saved_model", env_id=None)
    return model, root / "model.keras", root / "saved_model"


def test_round_trip_memory_keras_saved_model_agree(exported):
    model, keras_file, sm_dir = exported
    obs = observations(4)
    want = {k: v.numpy() for k, v in model(obs).items()}
    reloaded = keras.saving.load_model(keras_file, compile=False)
    got_keras = {k: v.numpy() for k, v in reloaded(obs).items()}
    loaded = tf.saved_model.load(str(sm_dir))
    served = {k: v.numpy() for k, v in loaded.serve(tf.constant(obs)).items()}
    assert set(served) == {"probs", "value"}
    for out in (got_keras, served):
        np.testing.assert_allclose(out["probs"], want["probs"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["value"], want["value"], rtol=1e-5, atol=1e-6)
    assert served["probs"].shape == (16, 3) and served["value"].shape == (16,)
    np.testing.assert_array_equal(loaded.greedy_action(tf.constant(obs)).numpy(), want["logits"].argmax(-1))
    assert len(set(want["logits"].argmax(-1))) > 1  # the check above is not trivially constant
    # Signatures, for TF-Serving and for callers that use them.
    assert {SERVE_ENDPOINT, GREEDY_ENDPOINT, "serving_default"} <= set(loaded.signatures)
    spec = loaded.signatures[SERVE_ENDPOINT].structured_input_signature[1]["obs"]
    assert spec.shape.as_list() == [None, 4] and spec.dtype == tf.float32
    assert read_export_metadata(sm_dir)["obs_shape"] == [4] and read_export_metadata(sm_dir)["n_actions"] == 3


FRESH_PROCESS = textwrap.dedent("""
    import importlib.abc, importlib.machinery, json, sys

    BLOCKED = ("a2c", "keras")

    class _Refuse(importlib.abc.Loader):
        def create_module(self, spec):
            raise ImportError(f"{spec.name} is blocked in this process")

        def exec_module(self, module):
            raise ImportError("blocked")

    class _Block(importlib.abc.MetaPathFinder):
        # Modules are *found* (TensorFlow probes for keras) but can never be imported.
        def find_spec(self, name, path=None, target=None):
            # Whatever finder would locate it (a path entry or an editable install's hook).
            if name.split(".")[0] in BLOCKED:
                return importlib.machinery.ModuleSpec(name, _Refuse())
            return None

    sys.meta_path.insert(0, _Block())
    for name in BLOCKED:
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(f"{name} could be imported: the test would prove nothing")

    import numpy as np
    import tensorflow as tf

    model = tf.saved_model.load(sys.argv[1])
    obs = np.load(sys.argv[2])
    out = model.serve(tf.constant(obs))
    np.savez(sys.argv[3], probs=out["probs"].numpy(), value=out["value"].numpy(),
             action=model.greedy_action(tf.constant(obs)).numpy(),
             sig_action=model.signatures["greedy_action"](obs=tf.constant(obs))["output_0"].numpy())
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)))
""")


def test_saved_model_runs_in_a_process_without_a2c_or_keras(exported, tmp_path):
    model, _, sm_dir = exported
    obs = observations(4)
    np.save(tmp_path / "obs.npy", obs)
    (tmp_path / "fresh.py").write_text(FRESH_PROCESS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # -I: no PYTHONPATH, no user site, no cwd/script dir tricks; run outside the repository.
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            str(tmp_path / "fresh.py"),
            str(sm_dir),
            str(tmp_path / "obs.npy"),
            str(tmp_path / "out.npz"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []  # neither a2c nor keras got imported
    got = np.load(tmp_path / "out.npz")
    want = {k: v.numpy() for k, v in model(obs).items()}
    np.testing.assert_allclose(got["probs"], want["probs"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got["action"], want["logits"].argmax(-1))
    np.testing.assert_array_equal(got["sig_action"], got["action"])


def test_training_writes_saved_model_matching_model_keras(run_dir):
    sm = run_dir / "saved_model"
    assert (sm / "saved_model.pb").is_file()
    assert read_export_metadata(sm)["env_id"] == "CartPole-v1"
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    obs = observations(4)
    loaded = tf.saved_model.load(str(sm))  # keep a reference: its functions use its variables
    served = loaded.serve(tf.constant(obs))
    np.testing.assert_allclose(served["probs"].numpy(), model(obs)["probs"].numpy(), rtol=1e-5, atol=1e-6)
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_export_replaces_an_existing_export_and_leaves_no_temp(exported, tmp_path):
    model, _, _ = exported
    target = tmp_path / "saved_model"
    export_saved_model(model, target)
    (target / "stale.txt").write_text("from the old export")
    export_saved_model(model, target, env_id="CartPole-v1")
    assert not (target / "stale.txt").exists()
    assert read_export_metadata(target)["env_id"] == "CartPole-v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask  # a normal directory, not mkdtemp's 0700


def test_failed_export_keeps_the_old_one(exported, tmp_path, monkeypatch):
    model, _, _ = exported
    target = tmp_path / "saved_model"
    export_saved_model(model, target, env_id="old")

    class Broken:
        def write_out(self, path, verbose=True):
            (Path(path) / "saved_model.pb").write_text("half written")
            raise RuntimeError("disk full")

    monkeypatch.setattr("a2c.artifacts.export.build_export_archive", lambda m: Broken())
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, target, env_id="new")
    assert read_export_metadata(target)["env_id"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]
    tf.saved_model.load(str(target))  # still a valid SavedModel


def test_export_refuses_to_replace_something_else(exported, tmp_path):
    model, _, _ = exported
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ModelFileError, match="not a SavedModel directory"):
        export_saved_model(model, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_cli_export_run_dir(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    shutil.rmtree(run / "saved_model")
    assert main(["export", str(run)]) == 0
    assert "saved_model" in capsys.readouterr().out
    assert (run / "saved_model" / "saved_model.pb").is_file()
    assert read_export_metadata(run / "saved_model")["env_id"] == "CartPole-v1"
    # a .keras file with --out
    out = export_run(run / "model.keras", tmp_path / "elsewhere")
    assert (out / METADATA_FILE).is_file()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "path not found"),
        (lambda p: p, "has no model.keras"),
        (lambda p: (p / "model.keras").write_text("not a zip") and p / "model.keras", "not a .keras archive"),
    ],
)
def test_cli_export_errors(tmp_path, capsys, make, message):
    assert main(["export", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_onnx_export_matches_keras(run_dir, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from a2c.artifacts.export import export_onnx, load_keras_model

    model = load_keras_model(run_dir / "model.keras")
    path = export_onnx(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path))
    obs = observations(4, 5)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {session.get_inputs()[0].name: obs})))
    want = {k: v.numpy() for k, v in model(obs).items()}
    got_probs = next(v for v in outputs.values() if v.ndim == 2 and np.allclose(v.sum(axis=1), 1.0))
    np.testing.assert_allclose(got_probs, want["probs"], rtol=1e-5, atol=1e-6)
    got_value = next(v for v in outputs.values() if v.ndim == 1)
    np.testing.assert_allclose(got_value, want["value"], rtol=1e-5, atol=1e-5)


def test_cli_export_onnx(run_dir, tmp_path):
    pytest.importorskip("tf2onnx")
    import shutil as _shutil

    from a2c.cli.main import main

    run = tmp_path / "run"
    _shutil.copytree(run_dir, run)
    assert main(["export", str(run), "--onnx"]) == 0
    assert (run / "model.onnx").stat().st_size > 1000


# --- a2c export leaves a current SavedModel alone ------------------------------------------


def _copy_run(run_dir: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)  # copy2 keeps mtimes: the export stays newer than model.keras
    return run


def _perturb_and_save(run: Path) -> keras.Model:
    """Overwrite model.keras with different weights, as a resumed or retrained run would."""
    model = keras.saving.load_model(run / "model.keras", compile=False)
    for v in model.trainable_variables:
        v.assign(v + 0.3)
    save_model(model, run / "model.keras")
    return model


def _served_probs(sm: Path, obs: np.ndarray) -> np.ndarray:
    loaded = tf.saved_model.load(str(sm))
    return loaded.serve(tf.constant(obs))["probs"].numpy()


def test_cli_export_skips_a_current_saved_model(run_dir, tmp_path, capsys):
    run = _copy_run(run_dir, tmp_path)
    marker = run / "saved_model" / "marker.txt"
    marker.write_text("untouched")  # a rewrite replaces the whole directory
    assert main(["export", str(run)]) == 0  # training's own export: current by modification time
    out = capsys.readouterr().out
    assert "is up to date with" in out and "--force" in out and "--out DIR" in out
    assert marker.exists()
    # an export by `a2c export` records model.keras's sha256 and is then current by content
    assert main(["export", str(run), "--force"]) == 0
    capsys.readouterr()
    meta = read_export_metadata(run / "saved_model")
    assert meta["source"]["file"] == "model.keras"
    assert meta["source"]["sha256"] == hashlib.sha256((run / "model.keras").read_bytes()).hexdigest()
    marker.write_text("untouched")
    os.utime(run / "model.keras")  # touched but not changed: the sha256 still matches
    assert main(["export", str(run)]) == 0
    assert "is up to date with" in capsys.readouterr().out and marker.exists()


@pytest.mark.parametrize("first_export", ["training", "a2c export"])
def test_cli_export_rewrites_after_model_keras_changed(run_dir, tmp_path, capsys, first_export):
    run = _copy_run(run_dir, tmp_path)
    if first_export == "a2c export":
        assert main(["export", str(run), "--force"]) == 0
    (run / "saved_model" / "marker.txt").write_text("stale")
    model = _perturb_and_save(run)
    capsys.readouterr()
    assert main(["export", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"rewrote SavedModel {run / 'saved_model'}") and "up to date" not in out
    assert not (run / "saved_model" / "marker.txt").exists()
    obs = observations(4)
    np.testing.assert_allclose(
        _served_probs(run / "saved_model", obs), model(obs)["probs"].numpy(), rtol=1e-5, atol=1e-6
    )


def test_cli_export_force_rewrites_a_current_saved_model(run_dir, tmp_path, capsys):
    run = _copy_run(run_dir, tmp_path)
    marker = run / "saved_model" / "marker.txt"
    marker.write_text("x")
    assert main(["export", str(run), "--force"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rewrote SavedModel") and "(--force;" in out
    assert not marker.exists()


def test_cli_export_out_writes_elsewhere_and_then_skips(run_dir, tmp_path, capsys):
    run = _copy_run(run_dir, tmp_path)
    before = sorted(p.name for p in (run / "saved_model").iterdir())
    other = tmp_path / "other_export"
    assert main(["export", str(run), "--out", str(other)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote SavedModel {other}")
    assert (other / "saved_model.pb").is_file()
    assert sorted(p.name for p in (run / "saved_model").iterdir()) == before
    assert main(["export", str(run), "--out", str(other)]) == 0
    assert "is up to date with" in capsys.readouterr().out
    # an export of some other model at --out, with no record of its source, is rewritten
    stranger = tmp_path / "stranger"
    export_saved_model(build_actor_critic(4, 2, (8,), seed=5), stranger)
    assert main(["export", str(run), "--out", str(stranger)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"rewrote SavedModel {stranger}") and "no record" in out
    model = keras.saving.load_model(run / "model.keras", compile=False)
    obs = observations(4)
    np.testing.assert_allclose(_served_probs(stranger, obs), model(obs)["probs"].numpy(), rtol=1e-5, atol=1e-6)


def test_a_bfloat16_model_exports_to_onnx_as_its_float32_twin(tmp_path):
    """ONNX Runtime's CPU kernels refuse a mixed bfloat16 graph: the exporter writes the same weights
    computing in float32, which the Keras float32 twin matches and the bfloat16 model approximates."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from a2c.agent.model import build_actor_critic, computes_in, float32_twin
    from a2c.artifacts.export import export_onnx
    from a2c.envs.spaces import ObsSpec

    model = build_actor_critic(
        ObsSpec((4, 36, 36), "uint8"), 4, (16,), "relu", trunk="nature_cnn", seed=0, precision="bfloat16"
    )
    twin = float32_twin(model)
    assert computes_in(model) == "bfloat16" and computes_in(twin) == "float32" and float32_twin(twin) is twin
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "model.onnx")))
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 36, 36), dtype=np.uint8)
    outputs = session.run(None, {session.get_inputs()[0].name: frames})
    value = next(v for v in outputs if v.ndim == 1)
    np.testing.assert_allclose(value, twin(frames)["value"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, model(frames)["value"], rtol=0.05, atol=0.02)
