"""A policy from any saved artifact: a run directory, a ``.keras`` file or a SavedModel.

:func:`load_model_any` gives a :class:`LoadedModel` whatever the format, with the
observation spec and action count it was trained for and the environment its run
named, so that ``a2c evaluate`` (:mod:`a2c.evaluate`) and the GIF recorder treat all
formats alike. TensorFlow is imported only once a model is actually loaded, so path
errors are reported without the cost of starting it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from a2c.envs import ObsSpec
from a2c.errors import ModelFileError
from a2c.evaluate import EVAL_SEED_BASE, Policy
from a2c.saving import MODEL_FILE

ParamsFn = Callable[[np.ndarray], np.ndarray]  # (batch, *obs_shape) -> the distribution's parameters


@dataclass
class LoadedModel:
    """A policy loaded from disk, whatever its format.

    :meth:`policy` gives a ``Policy`` for a fixed batch size; ``env_id`` is the
    environment the run directory's config.toml (or the export's metadata) names, if any.
    """

    path: Path
    kind: str  # "keras" or "saved_model"
    obs_spec: ObsSpec
    n_actions: int
    run_dir: Path | None
    env_id: str | None
    _params: Callable[[int], ParamsFn]
    _greedy: Callable[[int], Policy]
    handle: object = None  # the loaded Keras model or restored SavedModel (keeps its variables alive)

    def policy(self, batch: int, sample: bool = False, seed: int = EVAL_SEED_BASE) -> Policy:
        """A policy for a fixed batch of ``batch`` environments.

        Greedy: the distribution's mode. Sampled: row k draws its noise from its own
        generator seeded with ``seed + k``, so episode k's actions depend on its seed
        alone (a GIF of episode 0 replays exactly the first evaluated episode).
        """
        if not sample:
            return self._greedy(batch)
        import tensorflow as tf

        from a2c.distributions import CATEGORICAL

        params_fn = self._params(batch)
        rngs = [np.random.default_rng(seed + k) for k in range(batch)]

        def sampled(obs: np.ndarray) -> np.ndarray:
            params = tf.constant(params_fn(obs))
            noise = np.stack([rng.random(CATEGORICAL.noise_shape(params)[-1]) for rng in rngs])
            return CATEGORICAL.sample(params, tf.constant(noise)).numpy()

        return sampled


def run_dir_of(path: Path) -> Path | None:
    """The run directory ``path`` is, or lies in (the first with a config.toml)."""
    for candidate in (path, path.parent):
        if candidate.is_dir() and (candidate / "config.toml").is_file():
            return candidate
    return None


def env_of_run(run_dir: Path | None) -> str | None:
    """The env_id a run directory's config.toml names, or None."""
    if run_dir is None:
        return None
    try:
        env_id = tomllib.loads((run_dir / "config.toml").read_text()).get("env_id")
    except (OSError, ValueError):
        return None
    return env_id if isinstance(env_id, str) and env_id else None


def resolve_model_path(path: str | Path) -> tuple[str, Path]:
    """Classify ``path``: ("keras", file) or ("saved_model", directory); ModelFileError otherwise."""
    from a2c.export import SAVED_MODEL_DIR, is_saved_model_dir

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model path not found: {path}")
    if path.is_dir():
        if is_saved_model_dir(path):
            return "saved_model", path
        if (path / MODEL_FILE).is_file():
            return "keras", path / MODEL_FILE
        if is_saved_model_dir(path / SAVED_MODEL_DIR):
            return "saved_model", path / SAVED_MODEL_DIR
        raise ModelFileError(f"{path} is neither a run directory (no {MODEL_FILE}) nor a SavedModel "
                             "directory (no saved_model.pb)")
    if path.name in ("saved_model.pb", "saved_model.pbtxt"):
        return "saved_model", path.parent
    if path.suffix != ".keras":
        raise ModelFileError(f"cannot load model {path}: expected a run directory, a .keras file "
                             "or a SavedModel directory")
    return "keras", path


def _load_keras(file: Path) -> tuple[ObsSpec, int, Callable, Callable, object]:
    import tensorflow as tf

    from a2c.distributions import distribution_of
    from a2c.model import n_actions_of, obs_spec_of
    from a2c.policy import make_greedy
    from a2c.saving import load_keras_model

    model = load_keras_model(file)
    spec, dist = obs_spec_of(model), distribution_of(model.output)

    def params(batch: int) -> ParamsFn:
        fn = tf.function(lambda obs: dist.params(model(obs)),
                         input_signature=[spec.tensor_spec(batch)]).get_concrete_function()
        return lambda obs: fn(tf.constant(obs, spec.dtype)).numpy()

    return spec, n_actions_of(model), params, (lambda batch: make_greedy(model, batch)), model


def _load_saved_model(directory: Path) -> tuple[ObsSpec, int, Callable, Callable, object]:
    import tensorflow as tf

    from a2c.export import GREEDY_ENDPOINT, SERVE_ENDPOINT

    try:
        loaded = tf.saved_model.load(str(directory))
    except Exception as e:  # protobuf DecodeError, OSError, NotFoundError, ...
        detail = " ".join(str(e).split()) or type(e).__name__
        raise ModelFileError(f"cannot load SavedModel {directory}: {detail[:300]}") from None
    signatures = getattr(loaded, "signatures", {})
    if SERVE_ENDPOINT not in signatures or not hasattr(loaded, GREEDY_ENDPOINT):
        raise ModelFileError(f"SavedModel {directory} is not an a2c export: it lacks the "
                             f"{SERVE_ENDPOINT!r} and {GREEDY_ENDPOINT!r} endpoints")
    sig = signatures[SERVE_ENDPOINT]
    inputs = list(tf.nest.flatten(sig.structured_input_signature))
    outputs = sig.structured_outputs
    if (len(inputs) != 1 or inputs[0].shape.rank is None or inputs[0].shape.rank < 2
            or not inputs[0].shape[1:].is_fully_defined()
            or not isinstance(outputs, dict) or "probs" not in outputs or "value" not in outputs
            or outputs["probs"].shape.rank != 2 or outputs["probs"].shape[-1] is None):
        raise ModelFileError(f"SavedModel {directory} is not an a2c export: its {SERVE_ENDPOINT!r} "
                             "endpoint does not map (batch, *obs_shape) to {'probs', 'value'}")
    spec = ObsSpec(tuple(int(d) for d in inputs[0].shape[1:]), inputs[0].dtype.name)
    serve, greedy = getattr(loaded, SERVE_ENDPOINT), getattr(loaded, GREEDY_ENDPOINT)

    def params(batch: int) -> ParamsFn:
        # log(probs) is the logits up to a per-row constant, which sampling ignores.
        return lambda obs: np.log(serve(tf.constant(obs, spec.dtype))["probs"].numpy())

    def greedy_policy(batch: int) -> Policy:
        return lambda obs: greedy(tf.constant(obs, spec.dtype)).numpy()

    return spec, int(outputs["probs"].shape[-1]), params, greedy_policy, loaded


def load_model_any(path: str | Path) -> LoadedModel:
    """Load a run directory's model, a ``.keras`` file or a SavedModel directory.

    Every failure (missing path, corrupt or foreign file or directory, a model that is
    not an a2c actor-critic) is one ModelFileError with a one-line message.
    """
    from a2c.export import read_export_metadata

    kind, target = resolve_model_path(path)
    run_dir = run_dir_of(Path(path) if Path(path).is_dir() else Path(path).parent)
    if run_dir is None:
        run_dir = run_dir_of(target.parent)
    env_id = env_of_run(run_dir)
    if kind == "keras":
        spec, n_actions, params, greedy, handle = _load_keras(target)
    else:
        spec, n_actions, params, greedy, handle = _load_saved_model(target)
        meta_env = read_export_metadata(target).get("env_id")
        env_id = env_id or (meta_env if isinstance(meta_env, str) and meta_env else None)
    return LoadedModel(target, kind, spec, n_actions, run_dir, env_id, params, greedy, handle)


def check_model_fits_env(loaded: LoadedModel, env_id: str) -> None:
    """ModelFileError unless the model takes the environment's observations and actions."""
    from a2c.envs import env_spaces, observation_spec

    obs_space, action_space = env_spaces(env_id)
    spec, n_actions = observation_spec(obs_space), int(action_space.n)
    if (loaded.obs_spec, loaded.n_actions) != (spec, n_actions):
        raise ModelFileError(
            f"model {loaded.path} does not fit {env_id}: it takes {loaded.obs_spec.describe()} observations "
            f"and has {loaded.n_actions} actions, {env_id} has {spec.describe()} and {n_actions} (choose --env)")
