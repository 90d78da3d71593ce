"""Greedy (or sampled) evaluation, one environment and one seed per episode.

A vector env would restart short episodes while long ones are still running and so
over-sample them; here each episode has its own env, created with its own seed and
run to its end, and all episodes advance in lock-step so the policy is called once
per step for the whole set (fixed batch size: one trace).

``a2c evaluate PATH`` (:func:`evaluate_path`) loads a run directory's model, a
``.keras`` file or a SavedModel directory (:func:`load_model_any`), checks that its
input and output sizes fit the environment, runs :func:`evaluate_policy` greedily or
with seeded sampling, and can record the first episode as a GIF (:func:`record_gif`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2c.envs import encode_observations, make_env
from a2c.errors import ConfigError, EnvError, ModelFileError

# Evaluation seeds start here; training seeds (seed .. seed + n_envs - 1) stay below it.
EVAL_SEED_BASE = 1_000_000

Policy = Callable[[np.ndarray], np.ndarray]  # (episodes, obs_dim) float32 -> (episodes,) actions


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]
    seeds: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def summary(self) -> dict[str, float | int]:
        return {
            "mean_return": self.mean, "std_return": self.std,
            "min_return": float(np.min(self.returns)), "max_return": float(np.max(self.returns)),
            "mean_length": float(np.mean(self.lengths)), "episodes": len(self.returns),
        }

    def to_dict(self) -> dict:
        return {**self.summary(), **asdict(self)}


def final_eval_fields(final: EvalResult | None) -> dict[str, Any]:
    """The summary.json fields of a run's final evaluation (None/0 when it was skipped)."""
    return {
        "eval_mean_return": final.mean if final else None,
        "eval_std_return": final.std if final else None,
        "eval_min_return": min(final.returns) if final else None,
        "eval_max_return": max(final.returns) if final else None,
        "eval_episodes": len(final.returns) if final else 0,
        "eval_seeds": [final.seeds[0], final.seeds[-1]] if final else None,
    }


def evaluate_policy(policy: Policy, env_id: str, episodes: int, seed: int = EVAL_SEED_BASE) -> EvalResult:
    """Run ``episodes`` full episodes; episode k is reset with seed ``seed + k``."""
    seeds = [seed + k for k in range(episodes)]
    envs = [make_env(env_id)[0] for _ in range(episodes)]
    obs_space = envs[0].observation_space
    try:
        obs = np.stack([encode_observations([env.reset(seed=s)[0]], obs_space)[0]
                        for env, s in zip(envs, seeds)])
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, np.int64)
        running = np.ones(episodes, bool)
        while running.any():
            actions = np.asarray(policy(obs))
            for k in np.flatnonzero(running):
                o, r, terminated, truncated, _ = envs[k].step(int(actions[k]))
                obs[k] = encode_observations([o], obs_space)[0]
                returns[k] += float(r)
                lengths[k] += 1
                running[k] = not (terminated or truncated)
    finally:
        for env in envs:
            env.close()
    return EvalResult(returns.tolist(), lengths.tolist(), seeds)


# ----------------------------------------------------------------------------------------
# Evaluating a saved model: ``a2c evaluate PATH`` (a run directory, a .keras file or a
# SavedModel directory). TensorFlow is imported only once a model is actually loaded, so
# path errors are reported without the cost of starting it.

DEFAULT_ENV = "CartPole-v1"
GIF_MAX_FRAMES = 150
GIF_WIDTH = 240


@dataclass
class LoadedModel:
    """A policy loaded from disk, whatever its format.

    :meth:`policy` gives a ``Policy`` for a fixed batch size (float32 (batch, obs_dim)
    observations -> (batch,) actions); ``env_id`` is the environment the run
    directory's config.toml (or the export's metadata) names, if any.
    """

    path: Path
    kind: str  # "keras" or "saved_model"
    obs_dim: int
    n_actions: int
    run_dir: Path | None
    env_id: str | None
    _probs: Callable[[int], Callable[[np.ndarray], np.ndarray]]
    _greedy: Callable[[int], Policy]
    handle: object = None  # the loaded Keras model or restored SavedModel (keeps its variables alive)

    def policy(self, batch: int, sample: bool = False, seed: int = EVAL_SEED_BASE) -> Policy:
        """A policy for a fixed batch of ``batch`` environments.

        Greedy: ``argmax`` of the logits. Sampled: row k draws from its own generator
        seeded with ``seed + k``, so episode k's actions depend on its seed alone (a GIF of
        episode 0 replays exactly the first evaluated episode).
        """
        if not sample:
            return self._greedy(batch)
        probs_fn = self._probs(batch)
        rngs = [np.random.default_rng(seed + k) for k in range(batch)]

        def sampled(obs: np.ndarray) -> np.ndarray:
            cdf = np.cumsum(np.asarray(probs_fn(obs), np.float64), axis=-1)
            u = np.array([rng.random() for rng in rngs])[:, None] * cdf[:, -1:]
            return np.minimum((cdf <= u).sum(axis=-1), self.n_actions - 1).astype(np.int32)

        return sampled


def _run_dir_of(path: Path) -> Path | None:
    """The run directory ``path`` is, or lies in (the first with a config.toml)."""
    for candidate in (path, path.parent):
        if candidate.is_dir() and (candidate / "config.toml").is_file():
            return candidate
    return None


def _env_of_run(run_dir: Path | None) -> str | None:
    if run_dir is None:
        return None
    import tomllib

    try:
        env_id = tomllib.loads((run_dir / "config.toml").read_text()).get("env_id")
    except (OSError, ValueError):
        return None
    return env_id if isinstance(env_id, str) and env_id else None


def resolve_model_path(path: str | Path) -> tuple[str, Path]:
    """Classify ``path``: ("keras", file) or ("saved_model", directory); ModelFileError otherwise."""
    from a2c.export import MODEL_FILE, SAVED_MODEL_DIR, is_saved_model_dir

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


def _load_keras(file: Path) -> tuple[int, int, Callable, Callable, object]:
    import tensorflow as tf

    from a2c.export import load_keras_model
    from a2c.learner import make_greedy

    model = load_keras_model(file)
    obs_dim, n_actions = int(model.input_shape[-1]), int(model.output["probs"].shape[-1])

    def probs(batch: int) -> Callable[[np.ndarray], np.ndarray]:
        fn = tf.function(lambda obs: model(obs)["probs"],
                         input_signature=[tf.TensorSpec([batch, obs_dim], tf.float32)]).get_concrete_function()
        return lambda obs: fn(tf.constant(obs, tf.float32)).numpy()

    return obs_dim, n_actions, probs, (lambda batch: make_greedy(model, batch, obs_dim)), model


def _load_saved_model(directory: Path) -> tuple[int, int, Callable, Callable, object]:
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
    if (len(inputs) != 1 or inputs[0].shape.rank != 2 or inputs[0].shape[-1] is None
            or not isinstance(outputs, dict) or "probs" not in outputs or "value" not in outputs
            or outputs["probs"].shape.rank != 2 or outputs["probs"].shape[-1] is None):
        raise ModelFileError(f"SavedModel {directory} is not an a2c export: its {SERVE_ENDPOINT!r} "
                             "endpoint does not map (batch, obs_dim) to {'probs', 'value'}")
    obs_dim, n_actions = int(inputs[0].shape[-1]), int(outputs["probs"].shape[-1])
    serve, greedy = getattr(loaded, SERVE_ENDPOINT), getattr(loaded, GREEDY_ENDPOINT)

    def probs(batch: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda obs: serve(tf.constant(obs, tf.float32))["probs"].numpy()

    def greedy_policy(batch: int) -> Policy:
        return lambda obs: greedy(tf.constant(obs, tf.float32)).numpy()

    return obs_dim, n_actions, probs, greedy_policy, loaded


def load_model_any(path: str | Path) -> LoadedModel:
    """Load a run directory's model, a ``.keras`` file or a SavedModel directory.

    Every failure (missing path, corrupt or foreign file or directory, a model that is
    not an a2c actor-critic) is one ModelFileError with a one-line message.
    """
    from a2c.export import read_export_metadata

    kind, target = resolve_model_path(path)
    run_dir = _run_dir_of(Path(path) if Path(path).is_dir() else Path(path).parent)
    if run_dir is None:
        run_dir = _run_dir_of(target.parent)
    env_id = _env_of_run(run_dir)
    if kind == "keras":
        obs_dim, n_actions, probs, greedy, handle = _load_keras(target)
    else:
        obs_dim, n_actions, probs, greedy, handle = _load_saved_model(target)
        meta_env = read_export_metadata(target).get("env_id")
        env_id = env_id or (meta_env if isinstance(meta_env, str) and meta_env else None)
    return LoadedModel(target, kind, obs_dim, n_actions, run_dir, env_id, probs, greedy, handle)


def check_model_fits_env(loaded: LoadedModel, env_id: str) -> None:
    """ModelFileError unless the model's input and output sizes are the environment's."""
    from a2c.envs import env_dims

    obs_dim, n_actions = env_dims(env_id)
    if (loaded.obs_dim, loaded.n_actions) != (obs_dim, n_actions):
        raise ModelFileError(
            f"model {loaded.path} does not fit {env_id}: it takes {loaded.obs_dim} observation features "
            f"and has {loaded.n_actions} actions, {env_id} has {obs_dim} and {n_actions} (choose --env)")


def _restore_env(name: str, value: str | None) -> None:
    import os

    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def record_gif(policy: Policy, env_id: str, seed: int, path: str | Path, *,
               max_frames: int = GIF_MAX_FRAMES, width: int = GIF_WIDTH) -> dict[str, float | int]:
    """Play one episode (reset with ``seed``) with ``policy`` (batch 1) and save it as a GIF.

    Frames are downscaled to ``width`` pixels as they come and thinned to at most
    ``max_frames`` (the frame duration grows to match), so the file stays small and
    memory stays bounded however long the episode.
    """
    import imageio.v3 as iio
    from PIL import Image

    from a2c.files import atomic_write

    import os

    # Off-screen rendering needs no display; without this pygame's SDL complains about
    # XDG_RUNTIME_DIR on headless machines. Restored afterwards (a later window may want one).
    old_driver = os.environ.get("SDL_VIDEODRIVER")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        env, obs_space = make_env(env_id, render_mode="rgb_array")
    except BaseException:
        _restore_env("SDL_VIDEODRIVER", old_driver)
        raise
    frames: list[np.ndarray] = []
    stride = 1

    def keep(t: int) -> None:
        nonlocal frames, stride
        if t % stride:
            return
        frame = np.asarray(env.render())
        if frame.ndim != 3:
            raise EnvError(f"{env_id} does not render RGB frames; cannot record a GIF")
        image = Image.fromarray(frame[..., :3].astype(np.uint8))
        if image.width > width:
            image = image.resize((width, max(1, round(image.height * width / image.width))), Image.BILINEAR)
        frames.append(np.asarray(image))
        if len(frames) > 2 * max_frames:
            frames, stride = frames[::2], stride * 2

    try:
        obs, _ = env.reset(seed=seed)
        total, t, done = 0.0, 0, False
        keep(0)
        while not done:
            action = int(np.asarray(policy(encode_observations([obs], obs_space)))[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            t += 1
            done = terminated or truncated
            keep(t)
        fps = float(env.metadata.get("render_fps") or 30)
    finally:
        env.close()
        _restore_env("SDL_VIDEODRIVER", old_driver)
    if len(frames) > max_frames:
        index = np.unique(np.linspace(0, len(frames) - 1, max_frames).round().astype(int))
        stride = stride * (len(frames) - 1) / max(len(index) - 1, 1)
        frames = [frames[i] for i in index]
    duration_ms = max(20, int(round(1000 * stride / fps)))

    def write(tmp: Path) -> None:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=duration_ms, loop=0)

    try:
        atomic_write(path, write, suffix=".gif")
    except OSError as e:
        raise ConfigError(f"cannot write GIF {path}: {e.strerror or e}") from None
    return {"gif_return": total, "gif_length": t, "gif_frames": len(frames), "gif_seed": seed}


def evaluate_path(path: str | Path, env_id: str | None = None, *, episodes: int = 100,
                  seed: int = EVAL_SEED_BASE, sample: bool = False,
                  gif: str | Path | None = None) -> tuple[EvalResult, dict]:
    """Evaluate the model at ``path`` (see :func:`load_model_any`) on ``env_id``.

    ``env_id`` defaults to the run's config.toml, then the export's metadata, then
    CartPole-v1; the model's sizes are checked against the environment first. Returns
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
    check_model_fits_env(loaded, env_id)
    result = evaluate_policy(loaded.policy(episodes, sample, seed), env_id, episodes, seed)
    info: dict = {"model": str(loaded.path), "format": loaded.kind, "env_id": env_id, "env_source": source,
                  "policy": "sample" if sample else "greedy", "seed": seed}
    if gif is not None:
        info["gif"] = str(gif)
        info.update(record_gif(loaded.policy(1, sample, seed), env_id, seed, gif))
    return result, info


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a run directory, a .keras file or a SavedModel directory")
    parser.add_argument("--env", default=None, metavar="ENV_ID",
                        help="environment (default: the run's config.toml when PATH is or lies in a run "
                             f"directory, else the export's metadata, else {DEFAULT_ENV})")
    parser.add_argument("--episodes", type=int, default=100, metavar="N", help="episodes (default: 100)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_BASE, metavar="S",
                        help=f"episode k is reset with seed S+k (default: {EVAL_SEED_BASE})")
    parser.add_argument("--sample", action="store_true",
                        help="sample actions from the policy (seeded per episode) instead of the greedy action")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--gif", metavar="FILE", default=None,
                        help="record the first episode (seed S) as an animated GIF")


def run_evaluate(args: argparse.Namespace) -> int:
    result, info = evaluate_path(args.path, args.env, episodes=args.episodes, seed=args.seed,
                                 sample=args.sample, gif=args.gif)
    if args.json:
        print(json.dumps({**info, **result.to_dict()}, indent=2))
        return 0
    s = result.summary()
    print(f"model: {info['model']} ({info['format']}); environment: {info['env_id']} ({info['env_source']})")
    print(f"{info['policy']} policy, {s['episodes']} episodes, seeds {result.seeds[0]}..{result.seeds[-1]}")
    print(f"return: {s['mean_return']:.2f} +/- {s['std_return']:.2f} "
          f"(min {s['min_return']:.2f}, max {s['max_return']:.2f}); mean length {s['mean_length']:.1f}")
    if "gif" in info:
        print(f"wrote {info['gif']}: episode with seed {info['gif_seed']}, return {info['gif_return']:.2f}, "
              f"{info['gif_frames']} frames")
    return 0
