"""Environments given as Python objects: an instance, a class, a factory, or ``'module:callable'``.

Everything else in the package names an environment by a string (the config's ``env_id``,
written to config.toml), so an object gets one here:

* ``'module:qualname'`` when the class or function can be imported by that name: any
  process (Ray workers, a later ``a2c evaluate RUN``) can make the env again;
* otherwise a process-local id ``'a2c-local/<Name>-v<k>'``, registered in this module
  (a lambda, a class defined in ``__main__`` or inside a function, an instance).

An instance is never stepped itself: each env made from it is a ``copy.deepcopy`` (one
per training env and per evaluation episode), so the user's object keeps its state.
[`a2c.envs.make.env_spec`][a2c.envs.make.env_spec] looks both kinds of id up.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from a2c.common.errors import EnvError

LOCAL_NAMESPACE = "a2c-local"

_LOCAL: dict[str, EnvSpec] = {}


def local_spec(env_id: str) -> EnvSpec | None:
    """The spec of an id registered by [`env_id_for`][a2c.envs.sources.env_id_for] in this process."""
    return _LOCAL.get(env_id)


def is_local(env_id: str) -> bool:
    """Whether ``env_id`` names an object of this process only (other processes cannot make it)."""
    return env_id.startswith(LOCAL_NAMESPACE + "/")


def entry_point_spec(env_id: str) -> EnvSpec | None:
    """A spec for ``'module:callable'`` (a class or function of an importable module), or None
    when ``env_id`` is not of that form or ``callable`` is a registered id of the module.

    ImportError propagates: the caller names the id in its message.
    """
    if ":" not in env_id:
        return None
    module_name, name = env_id.split(":", 1)
    module = importlib.import_module(module_name)
    if name in gym.registry:
        return None
    target = _attribute(module, name)
    if target is None or not callable(target):
        return None
    return EnvSpec(id=env_id, entry_point=target)


def _attribute(root: Any, dotted: str) -> Any:
    obj = root
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def importable_name(obj: Any) -> str | None:
    """``'module:qualname'`` if importing that name gives back ``obj`` itself, else None."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found = _attribute(importlib.import_module(module), qualname)
    except ImportError:
        return None
    return f"{module}:{qualname}" if found is obj else None


def env_id_for(env: Any, env_kwargs: dict[str, Any] | None = None) -> str:
    """The id under which the package can make ``env``: an id string as it is, an importable
    class or function by its import name, anything else registered for this process.

    EnvError (one line) for an instance that cannot be copied, an instance given
    ``env_kwargs`` (it is built already), or something that is no environment at all.
    """
    if isinstance(env, str):
        return env
    if isinstance(env, gym.Env):
        if env_kwargs:
            raise EnvError(
                f"env_kwargs go to a class or factory; the {type(env).__name__} instance is built already "
                "(pass its class, or drop env_kwargs)"
            )
        try:
            copy.deepcopy(env)
        except Exception as e:  # any failure to copy: the instance cannot serve as a template
            raise EnvError(
                f"the {type(env).__name__} instance cannot be copied ({type(e).__name__}: {e}); pass a factory "
                "instead, e.g. A2C(MyEnv) or A2C(lambda: make_my_env())"
            ) from None
        return _register_local(type(env.unwrapped).__name__, functools.partial(_copy_of, env))
    if callable(env) and not isinstance(env, gym.vector.VectorEnv):
        return importable_name(env) or _register_local(getattr(env, "__name__", type(env).__name__), env)
    raise EnvError(
        f"an environment must be an id, a gymnasium.Env, a class or a function returning one; got {type(env).__name__}"
    )


def _copy_of(env: gym.Env) -> gym.Env:
    return copy.deepcopy(env)


def _register_local(name: str, entry_point: Callable[..., gym.Env]) -> str:
    base = re.sub(r"[^\w]", "", name) or "Env"
    env_id = f"{LOCAL_NAMESPACE}/{base}-v{len(_LOCAL)}"
    _LOCAL[env_id] = EnvSpec(id=env_id, entry_point=entry_point)
    return env_id
