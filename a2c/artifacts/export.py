"""Export a trained actor-critic as a TensorFlow SavedModel (``a2c export``).

The SavedModel needs TensorFlow alone to run (``tf.saved_model.load``; no Keras
model code, no ``a2c``) and has two endpoints, both taking a batch of encoded
observations as the model's [`ObsSpec`][a2c.envs.spaces.ObsSpec] says (shape (None, *obs_shape),
float32, or uint8 for frames):

* ``serve(obs) -> {"probs": (batch, n_actions) float32, "value": (batch,) float32}``
  for a categorical policy, ``{"mean", "log_std": (batch, action_dim) float32,
  "value"}`` for a Gaussian one; also the ``serving_default`` signature, as
  TF-Serving expects;
* ``greedy_action(obs) -> (batch,) int32``, the policy distribution's mode; for a
  Gaussian policy ``(batch, action_dim) float32``, the mean clipped to the action Box.

Next to the protobuf the directory holds ``a2c_export.json`` (dimensions, the
environment when known, versions, and the sha256 of the ``.keras`` file it was
written from); TensorFlow ignores it, [`a2c.artifacts.evaluate`][a2c.artifacts.evaluate] reads it. ``a2c export``
uses the sha256 to leave an export that is already current alone (``--force``
rewrites it anyway).

The directory is written atomically: into a temporary directory beside the target,
then renamed into place; an existing SavedModel is moved aside first and deleted
only once the new one is in place (and put back if the rename fails).

``--onnx`` also writes ``model.onnx`` through Keras' own exporter (the ``onnx`` extra).

TensorFlow and Keras are imported inside the functions so that building the
command line stays cheap.
(~330 lines: writing, the staleness check and the CLI share the metadata format (per policy
head and observation kind) and the atomic replace; split apart they would have to agree through a
third module.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from a2c.artifacts.saving import env_of_run, load_keras_model, model_file_of
from a2c.common.errors import ModelFileError
from a2c.common.files import current_umask

if TYPE_CHECKING:  # pragma: no cover
    import keras

SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "a2c_export.json"
SERVE_ENDPOINT = "serve"
GREEDY_ENDPOINT = "greedy_action"
#: Recurrent models only: ``initial_state(batch)``, the zero cell state of a batch of new episodes.
INITIAL_STATE_ENDPOINT = "initial_state"
EXPORT_FORMAT = "a2c-saved-model/1"
#: What ``serve`` returns for each policy head.
SERVED_OUTPUTS = {
    "categorical": ("probs", "value"),
    "gaussian": ("mean", "log_std", "value"),
    "multi_categorical": ("multi_probs", "value"),
    "bernoulli": ("bernoulli_probs", "value"),
}


def is_saved_model_dir(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file())


def build_export_archive(model: keras.Model) -> Any:
    """A ``keras.export.ExportArchive`` with the ``serve`` and ``greedy_action`` endpoints."""
    import keras
    import tensorflow as tf

    from a2c.agent.distributions import distribution_of
    from a2c.agent.model import action_bounds_of, obs_spec_of, policy_kind_of, state_size_of, tensor_spec

    if state_size_of(model):
        return _recurrent_archive(model)
    model_dtype = model.inputs[0].dtype
    spec = [tensor_spec(obs_spec_of(model), None, name="obs")]
    dist = distribution_of(model.output)
    served = SERVED_OUTPUTS[policy_kind_of(model)]
    bounds = action_bounds_of(model)

    def _forward(obs: Any) -> dict[str, tf.Tensor]:
        if isinstance(obs, dict):  # Dict observations: each key in its input's dtype
            return model({k: tf.cast(v, model.input[k].dtype) for k, v in obs.items()}, training=False)
        return model(tf.cast(obs, model_dtype), training=False)

    def serve(obs: Any) -> dict[str, tf.Tensor]:
        out = _forward(obs)
        if "multi_logits" in out:  # each sub-action's probabilities, 0 on the padding
            out = {**out, "multi_probs": tf.nn.softmax(out["multi_logits"])}
        return {k: tf.cast(out[k], tf.float32) for k in served}

    def greedy_action(obs: Any) -> tf.Tensor:
        action = dist.mode(dist.params(_forward(obs)))
        if bounds is not None:  # a Gaussian policy's mean, clipped to the Box as the env would
            action = tf.clip_by_value(
                tf.cast(action, tf.float32), bounds[0].astype("float32"), bounds[1].astype("float32")
            )
        return action

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVE_ENDPOINT, serve, input_signature=spec)
    archive.add_endpoint(GREEDY_ENDPOINT, greedy_action, input_signature=spec)
    return archive


def _recurrent_archive(model: keras.Model) -> Any:
    """The endpoints of a recurrent model: each takes and returns the cell state, which the caller
    carries (and resets to ``initial_state`` at an episode start).

    ``serve(obs, state) -> (outputs, new_state)``, ``greedy_action(obs, state) -> (action, new_state)``,
    ``initial_state(batch) -> (batch, state_size) zeros``.
    """
    import keras
    import tensorflow as tf

    from a2c.agent.distributions import distribution_of
    from a2c.agent.model import action_bounds_of, obs_spec_of, policy_kind_of, state_size_of, tensor_spec

    dtype = model.inputs[0].dtype
    size = state_size_of(model)
    obs_spec = tensor_spec(obs_spec_of(model), None, name="obs")
    state_spec = tf.TensorSpec([None, size], tf.float32, name="state")
    dist = distribution_of(model.output)
    served = SERVED_OUTPUTS[policy_kind_of(model)]
    bounds = action_bounds_of(model)

    def _forward(obs: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        return model([tf.cast(obs, dtype), tf.cast(state, dtype)], training=False)

    def serve(obs: tf.Tensor, state: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        out = _forward(obs, state)
        if "multi_logits" in out:
            out = {**out, "multi_probs": tf.nn.softmax(out["multi_logits"])}
        return {k: tf.cast(out[k], tf.float32) for k in served}, tf.cast(out["state"], tf.float32)

    def greedy_action(obs: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        out = _forward(obs, state)
        action = dist.mode(dist.params(out))
        if bounds is not None:
            action = tf.clip_by_value(
                tf.cast(action, tf.float32), bounds[0].astype("float32"), bounds[1].astype("float32")
            )
        return action, tf.cast(out["state"], tf.float32)

    def initial_state(batch: tf.Tensor) -> tf.Tensor:
        return tf.zeros(tf.stack([batch, size]), tf.float32)

    def serve_flat(obs: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs, new_state = serve(obs, state)
        return {**outputs, "state": new_state}

    archive = keras.export.ExportArchive()
    archive.track(model)
    # A signature's outputs must be flat: TF-Serving gets {..outputs, "state"} as serving_default;
    # the Python endpoints return (outputs, new_state) and are attached beside it.
    archive.add_endpoint("serving_default", serve_flat, input_signature=[obs_spec, state_spec])
    root = archive._tf_trackable  # noqa: SLF001 - the object ExportArchive saves (Keras 3)
    root.serve = tf.function(serve, input_signature=[obs_spec, state_spec])
    root.greedy_action = tf.function(greedy_action, input_signature=[obs_spec, state_spec])
    root.initial_state = tf.function(initial_state, input_signature=[tf.TensorSpec([], tf.int32, name="batch")])
    return archive


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` directory to ``target``, replacing an old export safely."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        old.rmdir()
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_saved_model(
    model: keras.Model, path: str | Path, *, env_id: str | None = None, source: str | Path | None = None
) -> Path:
    """Write ``model`` as a SavedModel directory at ``path`` (atomically); return the path.

    An existing ``path`` is replaced only if it is a SavedModel directory or empty:
    anything else is refused with a ModelFileError rather than deleted. ``source``, the
    ``.keras`` file ``model`` was loaded from or saved to, is recorded (name, size,
    sha256) so that a later ``a2c export`` can tell whether the export is current.
    """
    import keras
    import tensorflow as tf

    from a2c.agent.model import (
        action_bounds_of,
        action_shape_of,
        n_actions_of,
        nvec_of,
        obs_spec_of,
        policy_kind_of,
        recurrent_cell_of,
    )
    from a2c.envs.spaces import DictSpec

    path = Path(path)
    if path.exists() and not (is_saved_model_dir(path) or (path.is_dir() and not any(path.iterdir()))):
        raise ModelFileError(f"refusing to replace {path}: it exists and is not a SavedModel directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    obs_spec = obs_spec_of(model)
    archive = build_export_archive(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp.", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it private; give it a normal dir's mode
        archive.write_out(str(tmp), verbose=False)
        kind = policy_kind_of(model)
        obs_in = (
            "obs {"
            + ", ".join(f"{k!r}: {sub.dtype} (None, {', '.join(map(str, sub.shape))})" for k, sub in obs_spec.items)
            + "}"
            if isinstance(obs_spec, DictSpec)
            else f"obs {obs_spec.dtype} (None, *obs_shape)"
        )
        if kind == "gaussian":
            bounds = action_bounds_of(model)
            endpoints = {
                SERVE_ENDPOINT: f"{obs_in} -> {{mean float32 (None, n_actions), "
                "log_std float32 (None, n_actions), value float32 (None,)}",
                GREEDY_ENDPOINT: f"{obs_in} -> action float32 (None, n_actions), "
                "the mean clipped to action_low..action_high",
            }
            extra = {
                "action_low": None if bounds is None else bounds[0].tolist(),
                "action_high": None if bounds is None else bounds[1].tolist(),
            }
        elif kind == "multi_categorical":
            endpoints = {
                SERVE_ENDPOINT: f"{obs_in} -> {{multi_probs float32 "
                "(None, len(nvec), max(nvec)) (0 past each sub-action's choices), value float32 (None,)}",
                GREEDY_ENDPOINT: f"{obs_in} -> action int32 (None, len(nvec)), each counting from 0",
            }
            extra = {"nvec": list(nvec_of(model) or ())}
        elif kind == "bernoulli":
            endpoints = {
                SERVE_ENDPOINT: f"{obs_in} -> {{bernoulli_probs float32 (None, n_actions), value float32 (None,)}}",
                GREEDY_ENDPOINT: f"{obs_in} -> action int32 (None, n_actions) of 0/1",
            }
            extra = {}
        else:
            endpoints = {
                SERVE_ENDPOINT: f"{obs_in} -> {{probs float32 (None, n_actions), value float32 (None,)}}",
                GREEDY_ENDPOINT: f"{obs_in} -> action int32 (None,)",
            }
            extra = {}
        recurrent_meta: dict[str, Any] = {}
        cell = recurrent_cell_of(model)
        if cell is not None:
            recurrent_meta = {"recurrent": cell.kind, "recurrent_size": cell.units, "state_size": cell.state_size}
            endpoints = {
                f"{SERVE_ENDPOINT}(obs, state)": f"(outputs, new_state): outputs as below, state float32 (None, "
                f"{cell.state_size}); serving_default returns the outputs and 'state' in one dict",
                f"{GREEDY_ENDPOINT}(obs, state)": "(action, new_state)",
                f"{INITIAL_STATE_ENDPOINT}(batch)": f"zeros (batch, {cell.state_size}): the state at an episode start",
                **{f"{k} outputs": v.replace("obs ", "obs, state ", 1) for k, v in endpoints.items()},
            }
        metadata = {
            "format": EXPORT_FORMAT,
            "obs_shape": (
                {k: list(sub.shape) for k, sub in obs_spec.items}
                if isinstance(obs_spec, DictSpec)
                else list(obs_spec.shape)
            ),
            "obs_dtype": {k: sub.dtype for k, sub in obs_spec.items}
            if isinstance(obs_spec, DictSpec)
            else obs_spec.dtype,
            "policy": kind,
            **recurrent_meta,
            "n_actions": action_shape_of(model)[0]
            if kind in ("multi_categorical", "bernoulli")
            else n_actions_of(model),
            **extra,
            "env_id": env_id,
            "endpoints": endpoints,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        }
        if source is not None:
            source = Path(source)
            metadata["source"] = {"file": source.name, "size": source.stat().st_size, "sha256": file_sha256(source)}
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_export_metadata(path: str | Path) -> dict[str, Any]:
    """The ``a2c_export.json`` of a SavedModel directory, or {} when absent or unreadable."""
    try:
        data = json.loads((Path(path) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


ExportState = Literal["absent", "current", "stale"]


@dataclass(frozen=True)
class ExportPlan:
    """Where ``a2c export`` would write, and whether what is there already matches the model."""

    file: Path
    target: Path
    state: ExportState
    reason: str  # why the target is stale; "" otherwise


def plan_export(path: str | Path, out: str | Path | None = None) -> ExportPlan:
    """Locate the model and the target, and compare the target with the model file.

    Current means: ``a2c_export.json`` records the model file's sha256 (training and
    ``a2c export`` both record it). An export without that record (written before it
    existed) at the default place counts as current when it is not older than the
    model file, since training writes both together.
    """
    file = model_file_of(Path(path))
    default = file.parent / SAVED_MODEL_DIR
    target = Path(out) if out is not None else default
    if not is_saved_model_dir(target):
        return ExportPlan(file, target, "absent", "")
    meta = read_export_metadata(target)
    source = meta.get("source")
    recorded = source.get("sha256") if isinstance(source, dict) else None
    if recorded is not None:
        if recorded == file_sha256(file):
            return ExportPlan(file, target, "current", "")
        return ExportPlan(file, target, "stale", f"{file.name} changed since it was exported")
    try:
        same_place = target.resolve() == default.resolve()
        newer = (target / METADATA_FILE).stat().st_mtime_ns >= file.stat().st_mtime_ns
    except OSError:
        same_place = newer = False
    if same_place and newer:
        return ExportPlan(file, target, "current", "")
    if same_place:
        return ExportPlan(file, target, "stale", f"{file.name} is newer than it")
    return ExportPlan(file, target, "stale", f"it has no record of being exported from {file.name}")


def export_run(path: str | Path, out: str | Path | None = None, *, force: bool = False) -> Path:
    """Export the model of a run directory (or a ``.keras`` file) as a SavedModel.

    Default output: ``<run dir>/saved_model`` (for a file, ``saved_model`` beside it).
    A target that is already current is left alone unless ``force``.
    """
    plan = plan_export(path, out)
    if plan.state == "current" and not force:
        return plan.target
    return write_export(plan)


def write_export(plan: ExportPlan) -> Path:
    model = load_keras_model(plan.file)
    return export_saved_model(model, plan.target, env_id=env_of_run(plan.file.parent), source=plan.file)


def export_onnx(model: keras.Model, path: str | Path) -> Path:
    """Write the model as ONNX (inputs ``obs``; outputs logits, probs, value), atomically.

    Uses Keras' own ``model.export(format="onnx")``, which needs the optional ``onnx``
    extra (tf2onnx); without it, a ModelFileError says what to install. A bfloat16 model is
    written as its float32 twin (the same weights): ONNX Runtime's CPU kernels do not take
    the mixed graph.
    """
    import tensorflow as tf

    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        raise ModelFileError("ONNX export needs tf2onnx: pip install -e '.[onnx]'") from None
    from a2c.agent.model import float32_twin, obs_spec_of, tensor_spec
    from a2c.common.files import atomic_write

    model = float32_twin(model)
    obs_spec = obs_spec_of(model)
    model(tf.zeros((1, *obs_spec.shape), model.inputs[0].dtype))  # Keras' ONNX exporter wants a called model
    signature = [tensor_spec(obs_spec, None, name="obs")]
    path = Path(path)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            # Keras' tf2onnx shim probes np.object, which NumPy 2 answers with a FutureWarning.
            warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
            model.export(str(tmp), format="onnx", input_signature=signature, verbose=False)

    atomic_write(path, write, suffix=".onnx")
    return path
