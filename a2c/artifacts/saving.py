"""The one place ``.keras`` model files are written and read.

Training, export, evaluation and the verifier all load models through
[`load_keras_model`][a2c.artifacts.saving.load_keras_model], so a missing, corrupt or foreign file gets the same
one-line [`ModelFileError`][a2c.common.errors.ModelFileError] wherever it is met. TensorFlow and Keras are
imported inside the functions so that the command line can report path errors
without starting them.
"""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from a2c.common.errors import ModelFileError
from a2c.common.files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import keras

MODEL_FILE = "model.keras"


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
    actor-critic; every failure is one ModelFileError with a one-line message."""
    file = keras_file_of(path)
    import keras

    import a2c.agent.model  # noqa: F401  registers the custom layers (Gaussian log-std, observation normalisation)

    try:
        model = keras.saving.load_model(file, compile=False)
    except Exception as e:  # keras raises ValueError, OSError, KeyError, zipfile errors, ...
        detail = " ".join(str(e).split()) or type(e).__name__
        raise ModelFileError(f"cannot load model {file}: {detail[:300]}") from None
    check_actor_critic(model, file)
    return model


def check_actor_critic(model: Any, where: str | Path) -> None:
    """ModelFileError unless ``model`` maps one input (or a dict of them) to a policy distribution's
    parameters and a value (``{"logits", "probs", "value"}`` for a categorical policy,
    ``{"mean", "log_std", "value"}`` for a Gaussian one)."""
    import keras

    from a2c.agent.distributions import distribution_of
    from a2c.agent.model import LOG_STD_LAYER, LOGITS_LAYER, MEAN_LAYER

    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{where} does not hold a Keras model (got {type(model).__name__})")
    outputs = model.output if isinstance(getattr(model, "output", None), dict) else None
    one_input = len(model.inputs) == 1 or isinstance(getattr(model, "input", None), dict)  # or a Dict's
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


def env_kwargs_of_run(run_dir: Path | None) -> dict[str, Any]:
    """The env_kwargs a run directory's config.toml gives its environment ({} when none)."""
    kwargs = _run_config(run_dir).get("env_kwargs")
    return dict(kwargs) if isinstance(kwargs, dict) else {}
