"""A policy from any saved artifact, and the ``a2c evaluate`` command built on it.

[`load_model_any`][a2c.artifacts.loading.load_model_any] gives a [`LoadedModel`][a2c.artifacts.loading.LoadedModel]
whatever the format (a run directory, a ``.keras`` file or a SavedModel), with the observation spec and action
count it was trained for and the environment its run named, so that evaluation
([`a2c.artifacts.evaluate.evaluate_policy`][a2c.artifacts.evaluate.evaluate_policy]) and the GIF recorder
([`a2c.artifacts.gif`][a2c.artifacts.gif]) treat all formats alike.
[`evaluate_path`][a2c.artifacts.loading.evaluate_path] is ``a2c evaluate``: it checks that the model fits the
environment and runs it greedily or with seeded sampling. TensorFlow is imported only once a model is actually loaded,
so path errors are reported without the cost of starting it.

(~330 lines: the .keras and SavedModel loaders each map their format onto the one
[`LoadedModel`][a2c.artifacts.loading.LoadedModel] for every policy head and observation kind; split by format,
the head and Dict handling they share would be written twice.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from a2c.agent.batch import Policy
from a2c.artifacts.evaluate import DEFAULT_ENV, EVAL_SEED_BASE, EvalResult, evaluate_policy
from a2c.artifacts.gif import record_gif
from a2c.artifacts.saving import MODEL_FILE, env_kwargs_of_run, env_of_run, eval_policy_of_run, run_dir_of
from a2c.common.errors import ConfigError, ModelFileError
from a2c.envs.spaces import DictSpec, ObsSpec, cast_obs

if TYPE_CHECKING:
    from gymnasium import spaces

    from a2c.agent.distributions import Distribution

ParamsFn = Callable[[np.ndarray], Any]  # (batch, *obs_shape) -> the distribution's parameters (arrays)


@dataclass
class LoadedModel:
    """A policy loaded from disk, whatever its format.

    [`policy`][a2c.artifacts.loading.LoadedModel.policy] gives a ``Policy`` for a fixed batch size; ``env_id`` is the
    environment the run directory's config.toml (or the export's metadata) names, if any.
    """

    path: Path
    kind: str  # "keras" or "saved_model"
    obs_spec: ObsSpec
    n_actions: int  # discrete actions, or action dimensions of a Gaussian policy
    run_dir: Path | None
    env_id: str | None
    distribution: Distribution  # (imported with TensorFlow)
    _params: Callable[[int], ParamsFn]
    _greedy: Callable[[int], Policy]
    handle: object = None  # the loaded Keras model or restored SavedModel (keeps its variables alive)
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # the run's, with its env_id

    def policy(self, batch: int, sample: bool = False, seed: int = EVAL_SEED_BASE) -> Policy:
        """A policy for a fixed batch of ``batch`` environments.

        Greedy: the distribution's mode. Sampled: [`a2c.agent.policy.seeded_sampler`][a2c.agent.policy.seeded_sampler],
        row k drawing from its own generator seeded from ``seed + k``, so episode k's actions depend on its
        seed alone (a GIF of episode 0 replays exactly the first evaluated episode).
        """
        if not sample:
            return self._greedy(batch)
        from a2c.agent.policy import seeded_sampler

        return seeded_sampler(self.distribution, self._params(batch), batch, seed)


def resolve_model_path(path: str | Path) -> tuple[str, Path]:
    """Classify ``path``: ("keras", file) or ("saved_model", directory); ModelFileError otherwise."""
    from a2c.artifacts.export import SAVED_MODEL_DIR, is_saved_model_dir

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
        raise ModelFileError(
            f"{path} is neither a run directory (no {MODEL_FILE}) nor a SavedModel directory (no saved_model.pb)"
        )
    if path.name in ("saved_model.pb", "saved_model.pbtxt"):
        return "saved_model", path.parent
    if path.suffix != ".keras":
        raise ModelFileError(
            f"cannot load model {path}: expected a run directory, a .keras file or a SavedModel directory"
        )
    return "keras", path


def _load_keras(file: Path) -> tuple[ObsSpec, int, Any, Callable, Callable, object]:
    import tensorflow as tf

    from a2c.agent.distributions import distribution_of
    from a2c.agent.model import action_shape_of, n_actions_of, obs_spec_of, policy_kind_of, state_size_of, tensor_spec
    from a2c.agent.policy import make_greedy
    from a2c.artifacts.saving import load_keras_model

    model = load_keras_model(file)
    spec, dist = obs_spec_of(model), distribution_of(model.output)

    def params(batch: int) -> ParamsFn:
        if state_size_of(model):
            raise ConfigError(RECURRENT_SAMPLE)
        fn = tf.function(
            lambda obs: dist.params(model(obs)), input_signature=[tensor_spec(spec, batch)]
        ).get_concrete_function()
        return lambda obs: tf.nest.map_structure(lambda t: t.numpy(), fn(cast_obs(obs, spec)))

    # MultiDiscrete and MultiBinary: the number of sub-actions (what the env's action shape says)
    multi = policy_kind_of(model) in ("multi_categorical", "bernoulli")
    n_actions = action_shape_of(model)[0] if multi else n_actions_of(model)
    return spec, n_actions, dist, params, (lambda batch: make_greedy(model, batch)), model


def _load_saved_model(directory: Path) -> tuple[ObsSpec, int, Any, Callable, Callable, object]:
    import tensorflow as tf

    from a2c.agent.distributions import distribution_of
    from a2c.artifacts.export import GREEDY_ENDPOINT, INITIAL_STATE_ENDPOINT, SERVE_ENDPOINT, read_export_metadata

    try:
        loaded = tf.saved_model.load(str(directory))
    except Exception as e:  # protobuf DecodeError, OSError, NotFoundError, ...
        detail = " ".join(str(e).split()) or type(e).__name__
        raise ModelFileError(f"cannot load SavedModel {directory}: {detail[:300]}") from None
    if hasattr(loaded, INITIAL_STATE_ENDPOINT):
        return _recurrent_saved_model(directory, loaded)
    signatures = getattr(loaded, "signatures", {})
    if SERVE_ENDPOINT not in signatures or not hasattr(loaded, GREEDY_ENDPOINT):
        raise ModelFileError(
            f"SavedModel {directory} is not an a2c export: it lacks the "
            f"{SERVE_ENDPOINT!r} and {GREEDY_ENDPOINT!r} endpoints"
        )
    sig = signatures[SERVE_ENDPOINT]
    inputs = list(tf.nest.flatten(sig.structured_input_signature))
    outputs = sig.structured_outputs
    meta = read_export_metadata(directory)
    dict_spec = None
    if isinstance(meta.get("obs_shape"), dict) and isinstance(meta.get("obs_dtype"), dict):
        # Dict observations: the keys (as the env names them) and their specs come from the metadata
        dict_spec = DictSpec(
            tuple(
                (k, ObsSpec(tuple(int(d) for d in shape), str(meta["obs_dtype"][k])))
                for k, shape in meta["obs_shape"].items()
            )
        )
        inputs = inputs[:1]  # checked per key by the metadata
    heads = ("mean", "multi_probs", "bernoulli_probs")
    head = next((h for h in heads if isinstance(outputs, dict) and h in outputs), "probs")
    if (
        len(inputs) != 1
        or inputs[0].shape.rank is None
        or inputs[0].shape.rank < 2
        or not inputs[0].shape[1:].is_fully_defined()
        or not isinstance(outputs, dict)
        or head not in outputs
        or "value" not in outputs
        or (head == "mean" and "log_std" not in outputs)
        or outputs[head].shape.rank != (3 if head == "multi_probs" else 2)
        or outputs[head].shape[1] is None
    ):
        raise ModelFileError(
            f"SavedModel {directory} is not an a2c export: its {SERVE_ENDPOINT!r} "
            "endpoint does not map (batch, *obs_shape) to {'probs', 'value'}, "
            "{'mean', 'log_std', 'value'}, {'multi_probs', 'value'} or {'bernoulli_probs', 'value'}"
        )
    spec: Any = dict_spec or ObsSpec(tuple(int(d) for d in inputs[0].shape[1:]), inputs[0].dtype.name)
    serve_fn, greedy_fn = getattr(loaded, SERVE_ENDPOINT), getattr(loaded, GREEDY_ENDPOINT)

    def tensors(obs: Any) -> Any:
        if isinstance(spec, DictSpec):
            return {k: tf.constant(obs[k], sub.dtype) for k, sub in spec.items}
        return tf.constant(obs, spec.dtype)

    def serve(obs: Any) -> Any:
        return serve_fn(tensors(obs))

    def greedy(obs: Any) -> Any:
        return greedy_fn(tensors(obs))

    if head == "mean":
        dist = distribution_of({"mean": None, "log_std": None})

        def params(batch: int) -> ParamsFn:
            def gaussian(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                out = serve(obs)
                return out["mean"].numpy(), out["log_std"].numpy()

            return gaussian
    elif head == "multi_probs":
        dist = distribution_of({"multi_logits": None})

        def params(batch: int) -> ParamsFn:
            def multi(obs: np.ndarray) -> np.ndarray:
                with np.errstate(divide="ignore"):  # the padding's probability is 0: log -inf, never drawn
                    return np.log(serve(obs)["multi_probs"].numpy())

            return multi
    elif head == "bernoulli_probs":
        dist = distribution_of({"bernoulli_logits": None})

        def params(batch: int) -> ParamsFn:
            def bernoulli(obs: np.ndarray) -> np.ndarray:
                p = serve(obs)["bernoulli_probs"].numpy()
                with np.errstate(divide="ignore"):  # p of 0 or 1: an infinite logit, sigmoid gives p back
                    return np.log(p) - np.log1p(-p)

            return bernoulli
    else:
        # ``serve`` returns probabilities: log(probs) is the logits up to a per-row constant,
        # which the categorical distribution's sampling ignores.
        dist = distribution_of({"logits": None})

        def params(batch: int) -> ParamsFn:
            return lambda obs: np.log(serve(obs)["probs"].numpy())

    def greedy_policy(batch: int) -> Policy:
        return lambda obs: greedy(obs).numpy()

    return spec, int(outputs[head].shape[1]), dist, params, greedy_policy, loaded


RECURRENT_SAMPLE = "sampled evaluation of a recurrent model is not supported: evaluate it greedily (drop --sample)"


def _recurrent_saved_model(directory: Path, loaded: Any) -> tuple[ObsSpec, int, Any, Callable, Callable, object]:
    """A recurrent export ([`a2c.artifacts.export`][a2c.artifacts.export]): its greedy policy carries the
    state from call to call, as [`a2c.agent.policy.RecurrentPolicy`][a2c.agent.policy.RecurrentPolicy] does for a
    Keras model."""
    import tensorflow as tf

    from a2c.agent.distributions import distribution_of
    from a2c.agent.policy import RecurrentPolicy
    from a2c.artifacts.export import read_export_metadata

    meta = read_export_metadata(directory)
    try:
        spec = ObsSpec(tuple(int(d) for d in meta["obs_shape"]), str(meta["obs_dtype"]))
        n_actions, size, kind = int(meta["n_actions"]), int(meta["state_size"]), str(meta["policy"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"SavedModel {directory}: a recurrent export needs its a2c_export.json") from None
    keys = {"gaussian": "mean", "multi_categorical": "multi_logits", "bernoulli": "bernoulli_logits"}
    dist = distribution_of({keys.get(kind, "logits"): None, **({"log_std": None} if kind == "gaussian" else {})})

    def step(obs: Any, state: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        state = state * (1.0 - start)[:, None]  # a new episode starts from the zero state
        action, new_state = loaded.greedy_action(tf.constant(obs, spec.dtype), tf.constant(state, tf.float32))
        return action.numpy(), new_state.numpy()

    def params(batch: int) -> ParamsFn:
        raise ConfigError(RECURRENT_SAMPLE)

    return spec, n_actions, dist, params, (lambda batch: RecurrentPolicy(step, batch, size)), loaded


def load_model_any(path: str | Path) -> LoadedModel:
    """Load a run directory's model, a ``.keras`` file or a SavedModel directory.

    Every failure (missing path, corrupt or foreign file or directory, a model that is
    not an a2c actor-critic) is one ModelFileError with a one-line message.
    """
    from a2c.artifacts.export import read_export_metadata

    kind, target = resolve_model_path(path)
    run_dir = run_dir_of(Path(path) if Path(path).is_dir() else Path(path).parent)
    if run_dir is None:
        run_dir = run_dir_of(target.parent)
    env_id = env_of_run(run_dir)
    env_kwargs = env_kwargs_of_run(run_dir) if env_id else {}
    if kind == "keras":
        spec, n_actions, dist, params, greedy, handle = _load_keras(target)
    else:
        spec, n_actions, dist, params, greedy, handle = _load_saved_model(target)
        meta_env = read_export_metadata(target).get("env_id")
        env_id = env_id or (meta_env if isinstance(meta_env, str) and meta_env else None)
    return LoadedModel(target, kind, spec, n_actions, run_dir, env_id, dist, params, greedy, handle, env_kwargs)


def check_model_fits_env(loaded: LoadedModel, env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """ModelFileError unless the model takes the environment's observations and actions."""
    from a2c.agent.distributions import distribution_for
    from a2c.envs.make import env_spaces
    from a2c.envs.spaces import observation_spec

    obs_space, action_space = env_spaces(env_id, env_kwargs)
    spec = observation_spec(obs_space)
    mismatch = distribution_for(env_id, action_space).param_keys != loaded.distribution.param_keys
    n_actions = int(action_space.shape[0]) if action_space.shape else int(cast("spaces.Discrete", action_space).n)
    unit = "action dimensions" if action_space.shape else "actions"
    if mismatch:
        mine = {
            "mean": "a Gaussian",
            "multi_logits": "a MultiDiscrete (multi-categorical)",
            "bernoulli_logits": "a MultiBinary (Bernoulli)",
        }.get(loaded.distribution.param_keys[0], "a categorical")
        raise ModelFileError(
            f"model {loaded.path} does not fit {env_id}: it has {mine} policy and {env_id} "
            f"has action space {action_space} (choose --env)"
        )
    if (loaded.obs_spec, loaded.n_actions) != (spec, n_actions):
        raise ModelFileError(
            f"model {loaded.path} does not fit {env_id}: it takes {loaded.obs_spec.describe()} observations "
            f"and has {loaded.n_actions} {unit}, {env_id} has {spec.describe()} and {n_actions} (choose --env)"
        )


# ----------------------------------------------------------------------------------------
# ``a2c evaluate PATH``: a run directory, a .keras file or a SavedModel directory.


def evaluate_path(
    path: str | Path,
    env_id: str | None = None,
    *,
    episodes: int = 100,
    seed: int = EVAL_SEED_BASE,
    sample: bool | None = None,
    gif: str | Path | None = None,
) -> tuple[EvalResult, dict]:
    """Evaluate the model at ``path`` (see [`load_model_any`][a2c.artifacts.loading.load_model_any]) on ``env_id``.

    ``env_id`` defaults to the run's config.toml, then the export's metadata, then
    CartPole-v1; the model's sizes are checked against the environment first. ``sample``: None plays what
    the run's own evaluations played (its eval_policy, when ``env_id`` is its env), else the env's preset's
    (sampled for Atari games, greedy elsewhere). Returns
    the result and a dict describing what was evaluated (``model``, ``format``,
    ``env_id``, ``env_source``, ``policy``, ``seed`` and, with ``gif``, the GIF's episode).
    """
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    if gif is not None and Path(gif).suffix.lower() != ".gif":
        raise ConfigError(f"--gif must name a .gif file, got {gif}")
    loaded = load_model_any(path)
    if env_id:
        source = "--env"
    elif loaded.env_id:
        env_id, source = loaded.env_id, ("run config" if loaded.run_dir else "export metadata")
    else:
        env_id, source = DEFAULT_ENV, "default"
    env_kwargs = loaded.env_kwargs if env_id == loaded.env_id else None
    check_model_fits_env(loaded, env_id, env_kwargs)
    if sample is None:
        from a2c.config.presets import preset_for

        run_policy = eval_policy_of_run(loaded.run_dir) if env_id == loaded.env_id else None
        sample = (run_policy or preset_for(env_id).get("eval_policy", "greedy")) == "sampled"
    result = evaluate_policy(loaded.policy(episodes, sample, seed), env_id, episodes, seed, env_kwargs)
    info: dict = {
        "model": str(loaded.path),
        "format": loaded.kind,
        "env_id": env_id,
        "env_source": source,
        "policy": "sample" if sample else "greedy",
        "seed": seed,
    }
    if gif is not None:
        info["gif"] = str(gif)
        info.update(record_gif(loaded.policy(1, sample, seed), env_id, seed, gif, env_kwargs=env_kwargs))
    return result, info
