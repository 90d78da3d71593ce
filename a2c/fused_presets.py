"""Fused mode's preset layer, without TensorFlow.

``defaults < PRESETS[env] < FUSED_PRESETS[env] < TOML < flags``: the command line
resolves (and so validates) a fused config with :func:`make_fused_config` before it
imports TensorFlow, so a bad flag costs nothing; :mod:`a2c.fused` re-exports both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from a2c.config import Config, load_toml, make_config
from a2c.errors import EnvError

#: Hyperparameters applied in fused mode, above the env preset and below a TOML file and
#: flags (``defaults < PRESETS[env] < FUSED_PRESETS[env] < TOML < flags``), tuned for the
#: wall-clock time to a policy that stays solved; how they were chosen, and what was
#: rejected, is in results/tuning.md. The loop has no host step for ``normalize_reward``,
#: so rewards are scaled by a constant here (Acrobot's by the 0.01 its preset was tuned with).
_FUSED_COMMON: dict[str, Any] = dict(n_envs=128, n_steps=5, optimizer="rmsprop", lr=4e-3,
                                     lr_schedule="linear", ent_coef=0.0, fused_updates_per_call=20,
                                     normalize_reward=False)
FUSED_PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(_FUSED_COMMON, n_envs=64, lr=4e-3, reward_scale=0.1, total_steps=200_000,
                        eval_every=50_000, fused_xla=False),
    "Acrobot-v1": dict(_FUSED_COMMON, reward_scale=0.01, total_steps=500_000, eval_every=100_000,
                       fused_xla=False),
    "MountainCar-v0": dict(_FUSED_COMMON, total_steps=1_000_000, eval_every=200_000),
    # Box actions: the standard presets without their running normalisations (standard-trainer
    # features); the observations are scaled by their bounds and the rewards by a constant.
    "Pendulum-v1": dict(_FUSED_COMMON, n_envs=32, n_steps=8, lr=2e-3, normalize_obs=False,
                        normalize_reward=False, obs_scaling="bounds", reward_scale=0.1,
                        total_steps=2_000_000, eval_every=200_000),
    "MountainCarContinuous-v0": dict(_FUSED_COMMON, n_envs=4, n_steps=100, lr=7e-4, lr_schedule="constant",
                                     normalize_obs=False, normalize_reward=False, obs_scaling="bounds",
                                     reward_scale=0.1, fused_updates_per_call=5, total_steps=100_000,
                                     eval_every=25_000),
}


def make_fused_config(overrides: dict[str, Any] | None = None, toml_path: str | Path | None = None) -> Config:
    """Resolve a fused-mode config: ``defaults < env preset < FUSED_PRESETS[env] < TOML < overrides``.

    ``fused`` is set to True. The env id is resolved first (overrides, else the TOML,
    else the default) to pick the fused preset; an env without one has no port (EnvError).
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    from_file = load_toml(toml_path) if toml_path else {}
    env_id = str(overrides.get("env_id", from_file.get("env_id", Config.env_id)))
    if env_id not in FUSED_PRESETS:  # every TensorFlow port has a fused preset (tested)
        raise EnvError(f"fused mode needs a TensorFlow port of the environment and {env_id!r} has none; "
                       f"ported environments: {', '.join(sorted(FUSED_PRESETS))}")
    layered = {**FUSED_PRESETS.get(env_id, {}), **from_file, **overrides, "fused": True}
    return make_config(layered)
