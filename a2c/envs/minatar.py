"""MinAtar games (Young and Tian 2019): ``MinAtar/Breakout-v1`` and the other four, through the
``minatar`` package's gymnasium environments (the ``minatar`` extra).

The package defines the ids but registers them only when asked; [`register_minatar`][a2c.envs.minatar.register_minatar]
does it the first time a ``MinAtar/`` id is looked up. Observations are (10, 10, channels) bool
grids: float32 in the buffers, read channels-last by the model's small CNN
([`a2c.agent.model.SMALL_CNN`][a2c.agent.model.SMALL_CNN]). ``-v1`` ids use each game's minimal
action set, ``-v0`` the full six actions.
"""

from __future__ import annotations

import gymnasium as gym

from a2c.common.errors import EnvError

MINATAR_PREFIX = "MinAtar/"
EXTRA = "pip install 'a2c[minatar]'"


def is_minatar(env_id: str) -> bool:
    """A MinAtar game id (``MinAtar/Breakout-v1``)."""
    return env_id.split(":", 1)[-1].startswith(MINATAR_PREFIX)


def register_minatar() -> None:
    """Register the MinAtar games with gymnasium once, or EnvError naming the extra."""
    if "MinAtar/Breakout-v1" in gym.registry:
        return
    try:
        from minatar.gym import register_envs
    except ImportError as e:
        raise EnvError(f"MinAtar games need the minatar extra ({e.name} is missing): {EXTRA}") from None
    register_envs()
