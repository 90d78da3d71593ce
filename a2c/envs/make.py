"""Environment construction: vector envs for training, single envs for evaluation.

Every env is checked against [`a2c.envs.spaces`][a2c.envs.spaces] (what the agent accepts) when it is
made, and its observations are encoded as the [`ObsSpec`][a2c.envs.spaces.ObsSpec] says;
an unsupported space is refused with a message that names it.

Autoreset is deliberately gymnasium's default NEXT_STEP mode, for every env: the
numpy-vectorised CartPole only supports it, and it keeps one code path. In that mode
the step that ends an episode returns the episode's *final* observation (exactly what
a truncation must bootstrap from), and the following step is a reset step whose
transition is not real and is masked out of the loss (see [`a2c.trainers.rollout`][a2c.trainers.rollout]).

Atari games (``ALE/...``) are built by [`a2c.envs.atari`][a2c.envs.atari]: the zoo's preprocessing, and
episodes that end at a lost life while the game goes on ([`play_on`][a2c.envs.make.play_on] tells the
two apart in single-env loops).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vector_wrappers

from a2c.common.errors import A2CError, EnvError
from a2c.envs.atari import is_atari, make_atari_env, make_atari_vec_env, register_atari
from a2c.envs.minatar import is_minatar, register_minatar
from a2c.envs.novel import is_novel, register_novel
from a2c.envs.sources import entry_point_spec, is_local, local_spec
from a2c.envs.spaces import check_spaces, encode_observations, feature_space


def env_spec(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.envs.registration.EnvSpec:
    """Look up an environment, or raise EnvError naming it; ``env_kwargs`` are added to its
    constructor's keyword arguments.

    ``module:EnvName-v0`` imports ``module`` first (which registers the env), as
    ``gym.make`` allows, and ``module:callable`` names a class or function that returns the
    env ([`a2c.envs.sources`][a2c.envs.sources]): third-party and test environments work
    from the command line without being registered.
    """
    try:
        spec = local_spec(env_id) or entry_point_spec(env_id)
        if spec is None:
            if is_atari(env_id):
                register_atari()
            if is_minatar(env_id):
                register_minatar()
            if is_novel(env_id):
                register_novel()
            if ":" in env_id:
                module, name = env_id.split(":", 1)
                importlib.import_module(module)
                spec = gym.spec(name)
            else:
                spec = gym.spec(env_id)
    except ImportError as e:
        raise EnvError(f"unknown environment {env_id!r}: cannot import its module: {e}") from None
    except gym.error.Error as e:
        where = " (it was a Python object of the process that trained it: pass --env)" if is_local(env_id) else ""
        raise EnvError(f"unknown environment {env_id!r}: {e}{where}") from None
    if env_kwargs:
        spec = dataclasses.replace(spec, kwargs={**spec.kwargs, **env_kwargs})
    return spec


def _make(env_id: str, spec: gym.envs.registration.EnvSpec, **kwargs: Any) -> gym.Env:
    """``gym.make(spec)``; a constructor that raises is the user's environment failing: one line."""
    try:
        return gym.make(spec, **kwargs)
    except A2CError:
        raise
    except Exception as e:  # whatever the user's constructor raises
        raise EnvError(f"making {env_id} failed: {type(e).__name__}: {e}") from None


def make_vec_env(
    env_id: str, n_envs: int, atari_vector: str = "ale", env_kwargs: dict[str, Any] | None = None
) -> gym.vector.VectorEnv:
    """A vector env with episode statistics and observations as [`observation_spec`][a2c.envs.spaces.observation_spec]
    says.

    Uses the environment's numpy-vectorised entry point where it has one (CartPole)
    and a SyncVectorEnv otherwise; both autoreset on the NEXT step. Atari games report
    whole games as their episodes, from the vector env ``atari_vector`` names ([`a2c.envs.atari`][a2c.envs.atari]).
    """
    if is_atari(env_id):
        _no_atari_kwargs(env_id, env_kwargs)
        env = make_atari_vec_env(env_id, n_envs, atari_vector)
        try:
            check_spaces(env_id, env.single_observation_space, env.single_action_space)
        except BaseException:
            env.close()
            raise
        return env
    spec = env_spec(env_id, env_kwargs)
    probe = _make(env_id, spec)  # the single env tells us the spaces before we vectorise
    try:
        check_spaces(env_id, probe.observation_space, probe.action_space)
    finally:
        probe.close()
    if spec.vector_entry_point is not None:
        env = gym.make_vec(spec, num_envs=n_envs, vectorization_mode="vector_entry_point")
    else:
        env = gym.make_vec(
            spec, num_envs=n_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP}
        )
    return prepare_vec_env(env_id, env)


def prepare_vec_env(env_id: str, env: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """Check a vector env (its spaces, NEXT_STEP autoreset) and add what training reads of it:
    observations encoded as the [`ObsSpec`][a2c.envs.spaces.ObsSpec] says, episode statistics.
    Closes ``env`` when it is refused."""
    single_obs_space = env.single_observation_space
    try:
        check_spaces(env_id, single_obs_space, env.single_action_space)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:  # a vector entry point (or the user) chose otherwise
            raise EnvError(
                f"{env_id}: vector env autoresets in mode {getattr(mode, 'value', mode)}; a2c needs next_step "
                "(gymnasium's default)"
            )
    except BaseException:
        env.close()
        raise
    features = feature_space(single_obs_space)
    if not isinstance(single_obs_space, spaces.Box) or single_obs_space.dtype != features.dtype:
        env = vector_wrappers.TransformObservation(
            env,
            lambda obs: encode_observations(obs, single_obs_space),
            single_observation_space=features,
        )
    return vector_wrappers.RecordEpisodeStatistics(env)


def make_env(
    env_id: str, render_mode: str | None = None, env_kwargs: dict[str, Any] | None = None
) -> tuple[gym.Env, spaces.Space]:
    """A single env for evaluation, and its raw observation space (encode with
    [`encode_observations`][a2c.envs.spaces.encode_observations])."""
    if is_atari(env_id):  # whole games, rewards unclipped; an episode still ends at a lost life
        _no_atari_kwargs(env_id, env_kwargs)
        env = make_atari_env(env_id, render_mode=render_mode)
    else:
        render: dict[str, Any] = {"render_mode": render_mode} if render_mode else {}
        env = _make(env_id, env_spec(env_id, env_kwargs), **render)
    try:
        check_spaces(env_id, env.observation_space, env.action_space)
    except BaseException:
        env.close()
        raise
    return env, env.observation_space


def _no_atari_kwargs(env_id: str, env_kwargs: dict[str, Any] | None) -> None:
    if env_kwargs:
        raise EnvError(f"{env_id}: env_kwargs are not passed to Atari games (their settings are a2c.envs.atari's)")


def env_spaces(env_id: str, env_kwargs: dict[str, Any] | None = None) -> tuple[spaces.Space, spaces.Space]:
    """(observation space, action space) of an environment, checked as training checks them."""
    env, obs_space = make_env(env_id, env_kwargs=env_kwargs)
    try:
        return obs_space, env.action_space
    finally:
        env.close()


def play_on(
    env: gym.Env, obs: Any, terminated: bool, truncated: bool, info: dict[str, Any]
) -> tuple[Any, bool, dict[str, Any] | None]:
    """After a single env's step: the observation to act on next, whether the *game* is over,
    and the game's own tally (``info["episode"]``) when it reports one.

    An Atari episode ends at a lost life while the game goes on (``info["game_over"]``,
    [`a2c.envs.atari`][a2c.envs.atari]): the env is then reset (a no-op step) and play continues. Evaluation
    and GIFs share this so that both play whole games and stop at the same step.
    """
    if info.get("game_over", terminated or truncated):
        return obs, True, info.get("episode")
    if terminated or truncated:
        obs, _ = env.reset()
    return obs, False, None
