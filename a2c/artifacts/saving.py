"""The one place ``.keras`` model files are written and read.

Training, export, evaluation and the verifier all load models through
[`load_keras_model`][a2c.artifacts.saving.load_keras_model], so a missing, corrupt or foreign file gets the same
one-line [`ModelFileError`][a2c.common.errors.ModelFileError] wherever it is met. TensorFlow and Keras are
imported inside the functions so that the command line can report path errors
without starting them.

Model files travel between people, and a ``.keras`` file can hold layers that run code when they are
loaded (a ``Lambda`` layer's Python bytecode, a ``TFSMLayer`` that loads a SavedModel), so every load is
guarded twice: [`check_keras_archive`][a2c.artifacts.saving.check_keras_archive] reads the archive's
``config.json`` first and refuses any layer an a2c actor-critic never has, and Keras then deserialises it with
its safe mode forced on ([`keras_safe_mode`][a2c.artifacts.saving.keras_safe_mode]), even in a process where
``keras.config.enable_unsafe_deserialization()`` was called. Anything that loads a ``.keras`` file (the
command line, the object API) goes through [`load_keras_model`][a2c.artifacts.saving.load_keras_model].
"""

from __future__ import annotations

import json
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from a2c.common.errors import ModelFileError
from a2c.common.files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import keras

MODEL_FILE = "model.keras"
#: The Keras layers [`build_actor_critic`][a2c.agent.model.build_actor_critic] uses (tests/test_artifact_safety.py
#: builds every kind of model and checks it against these), and a2c's own registered layers.
MODEL_LAYERS = frozenset(
    {
        "InputLayer",
        "Dense",
        "Conv2D",
        "Flatten",
        "Rescaling",
        "Permute",
        "Softmax",
        "Reshape",
        "Activation",
        "Concatenate",
    }
)
A2C_LAYERS = frozenset(
    {"a2c>GaussianLogStd", "a2c>ObsNormalization", "a2c>MultiLogits", "a2c>RecurrentCell", "a2c>NarrowDense"}
)
# Where a2c's layers have lived: files saved by 0.1.0 name the old module (Keras finds the layers by
# their registered names, so both load).
A2C_LAYERS_MODULES = frozenset({"a2c.agent.model", "a2c.model"})


def save_model(model: keras.Model, path: str | Path) -> None:
    """Write ``model`` as a ``.keras`` file, atomically."""
    atomic_write(path, lambda p: model.save(p), suffix=".keras")


def model_file_of(path: str | Path) -> Path:
    """The ``.keras`` file named by ``path``: a run directory's model.keras, or the file itself."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model path not found: {path}")
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise ModelFileError(f"{path} is not a run directory: it has no {MODEL_FILE}")
        return path / MODEL_FILE
    return path


def keras_file_of(path: str | Path) -> Path:
    """[`model_file_of`][a2c.artifacts.saving.model_file_of], checked to be a ``.keras`` archive without
    starting Keras: what the command line checks before it imports TensorFlow."""
    file = model_file_of(path)
    if file.suffix != ".keras":
        raise ModelFileError(
            f"cannot load model {file}: expected a .keras file, a run directory or a SavedModel directory"
        )
    if not zipfile.is_zipfile(file):
        raise ModelFileError(f"cannot load model {file}: not a .keras archive (corrupt or not a zip file)")
    return file


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file (or a run directory's model.keras) and check it is an a2c
    actor-critic; every failure is one ModelFileError with a one-line message.

    The one entry point for ``.keras`` files that may come from someone else (``a2c evaluate``,
    ``a2c export``, the verifier): the archive is checked before Keras reads it
    ([`check_keras_archive`][a2c.artifacts.saving.check_keras_archive]) and Keras' safe mode is forced on.
    (A saved agent, [`A2C.load`][a2c.api.agent.A2C.load], restores weights from a TensorFlow checkpoint and
    never deserialises its model.keras.)"""
    file = keras_file_of(path)
    check_keras_archive(file)
    import keras

    import a2c.agent.model  # noqa: F401  registers the custom layers (Gaussian log-std, observation normalisation)

    try:
        with keras_safe_mode():
            model = keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as e:  # keras raises ValueError, OSError, KeyError, zipfile errors, ...
        detail = " ".join(str(e).split()) or type(e).__name__
        raise ModelFileError(f"cannot load model {file}: {detail[:300]}") from None
    check_actor_critic(model, file)
    return model


def check_keras_archive(file: Path) -> None:
    """ModelFileError unless the ``.keras`` archive's ``config.json`` describes a functional model built
    only of the layers a2c models have ([`MODEL_LAYERS`][a2c.artifacts.saving.MODEL_LAYERS], a2c's own) and no
    Python code (``__lambda__``) or object from outside Keras anywhere: read as plain JSON, before Keras
    deserialises anything."""
    try:
        with zipfile.ZipFile(file) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"cannot load model {file}: no readable config.json in the archive ({e})") from None
    refuse = f"refusing to load model {file}: "
    trusted = (
        ", which no a2c actor-critic has (a .keras file can run code as it loads: open it with Keras only if you "
        "trust its source)"
    )
    kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
    if kind != "Functional":
        raise ModelFileError(f"{file} is not an a2c actor-critic: it is a {kind} model, not a functional one")
    layers = config.get("config", {}).get("layers") if isinstance(config.get("config"), dict) else None
    for layer in layers if isinstance(layers, list) else []:
        kind = layer.get("class_name") if isinstance(layer, dict) else None
        registered = layer.get("registered_name") if isinstance(layer, dict) else None
        if kind not in MODEL_LAYERS and registered not in A2C_LAYERS:
            name = layer.get("name") if isinstance(layer, dict) else None
            raise ModelFileError(refuse + f"it holds a {kind or registered} layer ({name!r})" + trusted)
    for obj in _objects(config):
        module = obj.get("module")
        if obj.get("class_name") == "__lambda__":
            raise ModelFileError(refuse + "it holds Python code (a lambda)" + trusted)
        if isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
            if module not in A2C_LAYERS_MODULES or obj.get("registered_name") not in A2C_LAYERS:
                raise ModelFileError(refuse + f"it refers to the Python module {module!r}" + trusted)


def _objects(config: Any) -> Iterator[dict[str, Any]]:
    """Every serialised object (a dict with a ``class_name``) in a Keras config, nested ones included."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@contextmanager
def keras_safe_mode() -> Iterator[None]:
    """Keras' safe mode on inside, whatever ``keras.config.enable_unsafe_deserialization()`` set for the
    process (Keras lets that global switch override ``load_model(..., safe_mode=True)``)."""
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # a Keras without the scope: load_model's own safe_mode=True is all there is
        yield
        return
    with SafeModeScope(True):
        yield


def check_actor_critic(model: Any, where: str | Path) -> None:
    """ModelFileError unless ``model`` maps one input (or a dict of them) to a policy distribution's
    parameters and a value (``{"logits", "probs", "value"}`` for a categorical policy,
    ``{"mean", "log_std", "value"}`` for a Gaussian one)."""
    import keras

    from a2c.agent.distributions import distribution_of
    from a2c.agent.model import LOG_STD_LAYER, LOGITS_LAYER, MEAN_LAYER, RECURRENT_LAYER

    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{where} does not hold a Keras model (got {type(model).__name__})")
    outputs = model.output if isinstance(getattr(model, "output", None), dict) else None
    one_input = len(model.inputs) == 1 or isinstance(getattr(model, "input", None), dict)  # or a Dict's
    # a recurrent model: [obs, state] -> {..., "state"} (a2c.agent.model.RecurrentCell)
    recurrent = (
        len(model.inputs) == 2
        and outputs is not None
        and "state" in outputs
        and RECURRENT_LAYER in {layer.name for layer in model.layers}
    )
    one_input = one_input or recurrent
    if not one_input or outputs is None or "value" not in outputs:
        raise ModelFileError(
            f"{where} is not an a2c actor-critic: expected one input (or a dict of them) and outputs "
            "{'logits', 'probs', 'value'}"
        )
    try:
        distribution_of(outputs)
    except ValueError:
        raise ModelFileError(
            f"{where} is not an a2c actor-critic: its outputs {sorted(outputs)} hold no "
            "policy distribution's parameters"
        ) from None
    names = {layer.name for layer in model.layers}
    if LOGITS_LAYER not in names and not {MEAN_LAYER, LOG_STD_LAYER} <= names:
        raise ModelFileError(
            f"{where} is not an a2c actor-critic: no {LOGITS_LAYER!r} layer (nor {MEAN_LAYER!r} and {LOG_STD_LAYER!r})"
        )


def run_dir_of(path: Path) -> Path | None:
    """The run directory ``path`` is, or lies in (the first with a config.toml)."""
    for candidate in (path, path.parent):
        if candidate.is_dir() and (candidate / "config.toml").is_file():
            return candidate
    return None


def _run_config(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        return tomllib.loads((run_dir / "config.toml").read_text())
    except (OSError, ValueError):
        return {}


def env_of_run(run_dir: Path | None) -> str | None:
    """The env_id a run directory's config.toml names, or None."""
    env_id = _run_config(run_dir).get("env_id")
    return env_id if isinstance(env_id, str) and env_id else None


def eval_policy_of_run(run_dir: Path | None) -> str | None:
    """The eval_policy a run directory's config.toml names, or None (none, or a run from before the field)."""
    policy = _run_config(run_dir).get("eval_policy")
    return policy if isinstance(policy, str) and policy else None


def env_kwargs_of_run(run_dir: Path | None) -> dict[str, Any]:
    """The env_kwargs a run directory's config.toml gives its environment ({} when none)."""
    kwargs = _run_config(run_dir).get("env_kwargs")
    return dict(kwargs) if isinstance(kwargs, dict) else {}
