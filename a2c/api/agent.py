"""`A2C`: the agent as a Python object, the way Stable-Baselines3 users expect one.

    from a2c import A2C
    agent = A2C("CartPole-v1").learn(100_000)        # or A2C(MyEnv), A2C(my_env), A2C(make_env)
    action, _ = agent.predict(obs)
    agent.save("cartpole.zip"); agent = A2C.load("cartpole.zip")

Nothing here trains: the object holds one trainer and one run driver
([`a2c.run.driver.RunDriver`][a2c.run.driver.RunDriver]), the same that ``a2c train`` uses,
and each `learn` call runs the driver further with the trainer kept open, so that two
calls of 50k steps are one call of 100k, bit for bit. A run directory is written as by
the command line (config.toml, metrics, evaluations, model.keras, SavedModel, summary),
so ``a2c evaluate/plot/export`` work on it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import warnings
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import tomli_w
from gymnasium import spaces

from a2c.agent.batch import Policy
from a2c.agent.model import state_size_of
from a2c.agent.policy import make_act, make_greedy, make_recurrent_step
from a2c.artifacts.evaluate import EVAL_SEED_BASE, EvalResult, evaluate_policy
from a2c.artifacts.export import export_saved_model
from a2c.artifacts.saving import MODEL_FILE, save_model
from a2c.common.errors import ConfigError, EnvError, ModelFileError
from a2c.common.files import atomic_write
from a2c.common.tf_setup import configure_tensorflow, import_tensorflow_quietly
from a2c.config.resolve import make_config, make_fused_config
from a2c.config.schema import load_toml
from a2c.envs.make import env_spaces, make_env, prepare_vec_env
from a2c.envs.sources import env_id_for, is_local
from a2c.envs.spaces import DictSpec, encode_observations, env_actions, observation_spec
from a2c.run.callbacks import CallbackLike, as_callback
from a2c.run.driver import TrainResult
from a2c.run.train import open_run, trainer_for

AGENT_FORMAT = "a2c-agent/1"
AGENT_FILE = "a2c_agent.json"
STATE_PREFIX = "state/agent"
LOADED_STATE_DIR = "loaded_agent"  # in the run directory of a loaded agent: the saved agent it started from


class A2C:
    """An advantage actor-critic agent on one environment.

    ``env``: a registered id (``"CartPole-v1"``, ``"module:EnvId"``, ``"module:callable"``),
    a ``gymnasium.Env`` instance (copied for every env made: it serves as a template), a
    class or zero-argument factory returning one (called with ``env_kwargs``), or a
    gymnasium ``VectorEnv`` to train on (next-step autoreset, as gymnasium's default).
    Every other keyword is a config field ([`Config`][a2c.config.schema.Config]; ``a2c
    train --help`` lists them), validated as the command line validates its flags: one
    line naming the problem, as a ``ValueError``. The environment's preset applies below
    them, as on the command line. ``total_steps`` is the horizon of a decaying
    learning-rate schedule; `learn` decides how long to train.

    ``run_dir``: where the run is written (default ``runs/<env>__s<seed>__<time>``);
    ``overwrite``: replace a run there. ``quiet``: print nothing while training.
    """

    def __init__(
        self,
        env: Any,
        *,
        env_kwargs: dict[str, Any] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        quiet: bool = False,
        **config: Any,
    ) -> None:
        import_tensorflow_quietly()
        vec_env: gym.vector.VectorEnv | None = None
        if isinstance(env, gym.vector.VectorEnv):
            vec_env, env_id = env, _vector_env_id(env)
            config.setdefault("n_envs", env.num_envs)
            if config["n_envs"] != env.num_envs:
                raise ConfigError(f"n_envs is {config['n_envs']} but the vector env has {env.num_envs} envs")
        else:
            env_id = env_id_for(env, env_kwargs)
        values = {**config, "env_id": env_id, "env_kwargs": env_kwargs or {}}
        if run_dir is not None:
            values["run_dir"] = os.fspath(run_dir)
        cfg = (make_fused_config if values.get("fused") else make_config)(values)  # fused: its preset layer too
        if is_local(env_id) and (cfg.workers or cfg.fused):
            raise ConfigError(
                f"{env_id} is a Python object of this process: Ray workers and fused mode need an importable "
                "class or 'module:function' (or a registered id)"
            )
        if not isinstance(env, str) and vec_env is None:
            _check_env(env_id, cfg.env_kwargs)
        self.observation_space, self.action_space = (
            (vec_env.single_observation_space, vec_env.single_action_space)
            if vec_env is not None
            else env_spaces(cfg.env_id, cfg.env_kwargs)
        )
        configure_tensorflow(cfg)
        trainer = trainer_for(cfg, prepare_vec_env(env_id, vec_env) if vec_env is not None else None)
        self._driver, hparams = open_run(cfg, trainer, overwrite=overwrite, quiet=quiet)
        self._hparams: dict[str, Any] | None = hparams  # written to TensorBoard by the first session
        self.run_dir = self._driver.run_dir
        self.cfg = cfg
        self._open = True
        self._policies: dict[tuple[Any, ...], Any] = {}
        self.last_result: TrainResult | None = None

    # -- what users read -------------------------------------------------------------------

    @property
    def model(self) -> Any:
        """The Keras model being trained (policy and value heads)."""
        return self._driver.model

    @property
    def env_id(self) -> str:
        return self.cfg.env_id

    @property
    def num_timesteps(self) -> int:
        """Environment steps trained so far (all `learn` calls, and before `save`)."""
        return self._driver.progress.global_step

    # -- training ----------------------------------------------------------------------------

    def learn(self, total_timesteps: int, callback: CallbackLike = None, progress_bar: bool | None = None) -> A2C:
        """Train ``total_timesteps`` more environment steps (rounded up to whole updates of
        ``n_envs * n_steps``), then write the run's final files; return the agent.

        A later call continues with the same optimizer state, counters, environments and
        random generators. ``callback``: an [`a2c.Callback`][a2c.run.callbacks.Callback], a
        list of them, or ``fn(update, global_step)``; a hook returning False ends this call
        cleanly. ``progress_bar``: show one (on a terminal), or not; None: the config's
        ``progress``.
        """
        if not isinstance(total_timesteps, (int, np.integer)) or total_timesteps <= 0:
            raise ValueError(f"total_timesteps must be a positive int; got {total_timesteps!r}")
        if not self._open:
            raise RuntimeError(
                "this agent's training session ended with an error or an interruption; continue the run with "
                f"`a2c train --resume {self.run_dir}` or from a saved agent (A2C.load)"
            )
        driver = self._driver
        driver.callback = as_callback(callback)
        if progress_bar is not None:
            driver.cfg = dataclasses.replace(self.cfg, progress=bool(progress_bar))
        target = driver.progress.update + math.ceil(int(total_timesteps) / self.cfg.batch_size)
        try:
            self.last_result = driver.run(self._hparams, target=target, keep_open=True)
        except BaseException:
            self._open = False  # the driver closed the trainer
            raise
        finally:
            driver.cfg, driver.callback = self.cfg, None
        self._hparams = None  # written to TensorBoard once, by the first session
        return self

    # -- acting ------------------------------------------------------------------------------

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """``(actions, None)`` for one observation or a batch, as Stable-Baselines3's ``predict``.

        Actions are what ``env.step`` takes: ints for Discrete spaces, vectors clipped to
        the bounds for Box spaces. ``deterministic``: the most likely action; else one
        sampled from the policy (seeded from the config's seed). ``state`` and
        ``episode_start`` are ignored by a feed-forward policy (the returned state is None).
        A recurrent policy (``recurrent="lstm"|"gru"``) returns ``(actions, new_state)``: pass
        ``state`` back on the next call (None: the zero state) and ``episode_start`` (one bool
        per row; True where an episode begins: its state is reset before the cell).
        """
        if isinstance(self.observation_space, (spaces.Dict, spaces.Tuple)):
            return self._predict_dict(observation, deterministic)
        obs = np.asarray(observation)
        shape = self.observation_space.shape or ()
        if obs.shape == shape:
            single, batch = True, obs[None]
        elif obs.ndim == len(shape) + 1 and obs.shape[1:] == shape and obs.shape[0] > 0:
            single, batch = False, obs
        else:
            raise ValueError(
                f"observation of shape {obs.shape} does not fit the observation space {self.observation_space}: "
                f"pass one observation of shape {shape} or a batch of shape (n, {', '.join(map(str, shape))})"
            )
        encoded = encode_observations(batch, self.observation_space)
        if state_size_of(self.model):
            return self._predict_recurrent(encoded, single, state, episode_start, deterministic)
        actions = env_actions(np.asarray(self._policy(len(batch), deterministic)(encoded)), self.action_space)
        return (actions[0] if single else actions), None

    def _predict_recurrent(
        self, encoded: np.ndarray, single: bool, state: Any, episode_start: Any, deterministic: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` of a recurrent policy: one step from ``state`` (reset where ``episode_start``)."""
        n, size = len(encoded), state_size_of(self.model)
        state = np.zeros((n, size), np.float32) if state is None else np.asarray(state, np.float32)
        if single and state.shape == (size,):
            state = state[None]
        if state.shape != (n, size):
            raise ValueError(f"state of shape {state.shape} does not fit a batch of {n}: expected ({n}, {size})")
        start = np.zeros(n, np.float32) if episode_start is None else np.asarray(episode_start, np.float32)
        start = np.broadcast_to(start.reshape(-1), (n,)).astype(np.float32)
        key = ("recurrent", n, deterministic)
        if key not in self._policies:
            import tensorflow as tf

            generator = None if deterministic else tf.random.Generator.from_seed(self.cfg.seed + 12_345)
            self._policies[key] = make_recurrent_step(self.model, n, generator)
        actions, new_state = self._policies[key](encoded, state, start)
        actions = env_actions(np.asarray(actions), self.action_space)
        return (actions[0], new_state[0]) if single else (actions, new_state)

    def _predict_dict(self, observation: Any, deterministic: bool) -> tuple[np.ndarray, None]:
        """``predict`` for Dict observations (a dict of arrays, each one observation or a batch)
        and Tuple ones (a tuple of them)."""
        space = self.observation_space
        is_tuple = isinstance(space, spaces.Tuple)
        subspaces: dict[Any, spaces.Space] = (
            dict(enumerate(space.spaces)) if isinstance(space, spaces.Tuple) else dict(cast(spaces.Dict, space).spaces)
        )
        if is_tuple and isinstance(observation, (tuple, list)) and len(observation) == len(subspaces):
            observation = dict(enumerate(observation))
        if not isinstance(observation, dict) or set(observation) != set(subspaces):
            what = f"a tuple of {len(subspaces)} arrays" if is_tuple else f"a dict with the keys {sorted(subspaces)}"
            raise ValueError(f"observation must be {what} of the observation space {space}")
        arrays = {k: np.asarray(v) for k, v in observation.items()}
        single = all(arrays[k].shape == (subspaces[k].shape or ()) for k in subspaces)
        batch = {k: v[None] for k, v in arrays.items()} if single else arrays
        sizes = {v.shape[0] if v.ndim else 0 for v in batch.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"observation arrays of shapes {[v.shape for v in arrays.values()]} do not form a batch")
        n = sizes.pop()
        raw = tuple(batch[i] for i in range(len(subspaces))) if is_tuple else batch
        encoded = encode_observations(raw, space)
        actions = env_actions(np.asarray(self._policy(n, deterministic)(encoded)), self.action_space)
        return (actions[0] if single else actions), None

    def _policy(self, batch: int, deterministic: bool) -> Policy:
        """A compiled policy for a fixed batch size (one trace per size)."""
        key = (batch, deterministic)
        if key not in self._policies:
            if deterministic:
                self._policies[key] = make_greedy(self.model, batch)
            else:
                self._policies[key] = make_act(self.model, batch, self.cfg.seed + 12_345)[0]
        return self._policies[key]

    def evaluate(self, episodes: int = 10, deterministic: bool = True, seed: int = EVAL_SEED_BASE) -> EvalResult:
        """Play ``episodes`` whole episodes, episode k on its own env reset with ``seed + k``;
        ``.mean`` and ``.std`` of the returns, ``.returns``, ``.lengths``."""
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1; got {episodes}")
        return evaluate_policy(
            self._policy(episodes, deterministic), self.cfg.env_id, episodes, seed, env_kwargs=self.cfg.env_kwargs
        )

    # -- files -------------------------------------------------------------------------------

    def export(self, directory: str | os.PathLike[str]) -> Path:
        """Write the policy as a TensorFlow SavedModel (``serve`` and ``greedy_action``)."""
        return export_saved_model(self.model, Path(directory), env_id=self.cfg.env_id)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save everything training depends on (weights, optimizer, normalisation statistics,
        counters, random generators, environment state and config) to one ``.zip`` file
        (the suffix is added when missing), written atomically; return its path."""
        path = Path(path)
        if path.suffix != ".zip":
            path = path.with_name(path.name + ".zip")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = {k: v for k, v in self.cfg.to_dict().items() if k != "run_dir"}
            (folder / "config.toml").write_text(tomli_w.dumps(config))
            save_model(self.model, folder / MODEL_FILE)
            self._driver.write_state(folder / STATE_PREFIX)
            (folder / AGENT_FILE).write_text(json.dumps(self._describe(), indent=2))
            files = sorted(p for p in folder.rglob("*") if p.is_file())

            def write(target: Path) -> None:
                with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
                    for p in files:
                        z.write(p, p.relative_to(folder).as_posix())

            atomic_write(path, write)
        return path

    def _describe(self) -> dict[str, Any]:
        spec = observation_spec(self.observation_space)
        return {
            "format": AGENT_FORMAT,
            "a2c_version": version("a2c"),
            "env_id": self.cfg.env_id,
            "global_step": self.num_timesteps,
            "observations": (
                {k: [list(sub.shape), sub.dtype] for k, sub in spec.items}
                if isinstance(spec, DictSpec)
                else [list(spec.shape), spec.dtype]
            ),
            "actions": _action_signature(self.action_space),
            "observation_space": repr(self.observation_space),
            "action_space": repr(self.action_space),
        }

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        env: Any = None,
        *,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        quiet: bool = False,
    ) -> A2C:
        """An agent saved by [`save`][a2c.api.agent.A2C.save], ready to `predict` or to `learn`
        on (its counters go on from the saved ones, in a new run directory).

        ``env``: the environment to continue on (default: the saved config's); its spaces
        must be the saved agent's. An agent trained on an object of another process (a
        lambda, a class of ``__main__``) needs it again here.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"no saved agent at {path}")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            try:
                with zipfile.ZipFile(path) as z:
                    z.extractall(folder)
                meta = json.loads((folder / AGENT_FILE).read_text())
            except (zipfile.BadZipFile, OSError, ValueError, KeyError):
                raise ModelFileError(f"{path} is not a saved a2c agent (A2C.save writes one)") from None
            if not isinstance(meta, dict) or meta.get("format") != AGENT_FORMAT:
                raise ModelFileError(f"{path} is not a saved a2c agent of this version ({AGENT_FORMAT})")
            saved = load_toml(folder / "config.toml")
            if env is None and is_local(str(saved.get("env_id", ""))):
                raise EnvError(
                    f"the agent in {path} was trained on a Python object of the process that saved it "
                    f"({saved['env_id']}); pass it again: A2C.load(path, env=...)"
                )
            kwargs = saved.get("env_kwargs", {}) if env is None or isinstance(env, (str, type)) else None
            fields = {k: v for k, v in saved.items() if k not in ("env_id", "env_kwargs", "run_dir", "progress")}
            agent = cls(
                saved["env_id"] if env is None else env,
                env_kwargs=kwargs,
                run_dir=run_dir,
                overwrite=overwrite,
                quiet=quiet,
                **fields,
            )
            try:
                mine = agent._describe()
                for key, what in (("observations", "observations"), ("actions", "actions")):
                    if mine[key] != meta[key]:
                        raise EnvError(
                            f"{agent.env_id} does not fit the agent in {path}: its {what} are {mine[key]}, "
                            f"the agent's {meta[key]} ({meta['observation_space']}, {meta['action_space']})"
                        )
                # The state stays in the run directory: TensorFlow restores variables that do not
                # exist yet (optimizer slots) when they are created, from these files.
                kept = agent.run_dir / LOADED_STATE_DIR
                shutil.copytree(folder, kept, dirs_exist_ok=True)
                agent._driver.restore(kept / STATE_PREFIX)
            except BaseException:
                agent.close()
                raise
        return agent

    def close(self) -> None:
        """Close the environments (the agent can still `predict`, `evaluate` and `save`)."""
        if self._open:
            self._driver.trainer.close()
            self._open = False

    def __repr__(self) -> str:
        return f"A2C({self.cfg.env_id!r}, steps={self.num_timesteps}, run_dir={str(self.run_dir)!r})"


def _action_signature(space: spaces.Space) -> list[Any]:
    if isinstance(space, spaces.Discrete):
        return ["discrete", int(space.n)]
    box = cast(spaces.Box, space)  # the supported spaces are Discrete and Box (envs.spaces)
    return ["box", list(box.shape), np.asarray(box.low).tolist(), np.asarray(box.high).tolist()]


def _vector_env_id(env: gym.vector.VectorEnv) -> str:
    """An id for the single envs of a vector env: evaluation plays one env per episode."""
    fns = getattr(env, "env_fns", None)
    if fns:
        return env_id_for(fns[0])
    spec = getattr(env, "spec", None)
    if spec is not None and spec.id in gym.registry:
        return str(spec.id)
    raise EnvError(
        f"cannot make single environments like the {type(env).__name__}'s for evaluation; pass a "
        "SyncVectorEnv/AsyncVectorEnv (they keep their env_fns), a registered env, or a factory"
    )


def _check_env(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """gymnasium's ``check_env`` on a fresh env: a failure that would break training is one
    EnvError with the checker's message (its warnings are left to gymnasium)."""
    from gymnasium.utils.env_checker import check_env

    env, _ = make_env(env_id, env_kwargs=env_kwargs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env.unwrapped, skip_render_check=True)
    except Exception as e:  # the checker raises AssertionError and whatever the env itself raises
        message = " ".join(str(e).split()) or type(e).__name__
        raise EnvError(f"{env_id} fails gymnasium's check_env: {message}") from None
    finally:
        env.close()
