"""Resolve a run's config from its layers: ``defaults < preset < TOML < flags``.

The command line resolves (and so validates) a config before it imports TensorFlow,
so a bad flag costs nothing; fused mode adds its preset layer above the env preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from a2c.common.errors import ConfigError, EnvError
from a2c.config.presets import FUSED_PRESETS, preset_for
from a2c.config.schema import FIELD_NAMES, Config, coerce, describe_unknown, load_toml


def make_config(overrides: dict[str, Any] | None = None, toml_path: str | Path | None = None) -> Config:
    """Resolve defaults < preset < TOML < overrides, coerce types and validate."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown config keys: {describe_unknown(unknown)}")
    from_file = load_toml(toml_path) if toml_path else {}
    env_id = overrides.get("env_id", from_file.get("env_id", Config.env_id))
    merged = {**preset_for(str(env_id)), **from_file, **overrides}
    values = {k: coerce(k, v) for k, v in merged.items()}
    _split_envs(values, n_envs_given="n_envs" in from_file or "n_envs" in overrides)
    return Config(**values).validate()


def _split_envs(values: dict[str, Any], n_envs_given: bool) -> None:
    """With workers, make n_envs = workers x envs_per_worker: envs_per_worker, when set,
    decides n_envs unless n_envs was asked for too (then they must agree, checked by
    [`Config.validate`][a2c.config.schema.Config.validate]); otherwise n_envs is divided among the workers."""
    workers, per_worker = values.get("workers", 0), values.get("envs_per_worker", 0)
    if workers <= 0:
        return
    n_envs = values.get("n_envs", Config.n_envs)
    if per_worker > 0:
        if not n_envs_given:
            values["n_envs"] = workers * per_worker
    elif n_envs % workers:
        raise ConfigError(
            f"n_envs ({n_envs}) does not divide among {workers} workers; "
            "set --envs-per-worker (or an n_envs that is a multiple of --workers)"
        )
    else:
        values["envs_per_worker"] = n_envs // workers


def make_fused_config(overrides: dict[str, Any] | None = None, toml_path: str | Path | None = None) -> Config:
    """Resolve a fused-mode config: ``defaults < env preset < FUSED_PRESETS[env] < TOML < overrides``.

    ``fused`` is set to True. The env id is resolved first (overrides, else the TOML,
    else the default) to pick the fused preset; an env without one has no port (EnvError).
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    from_file = load_toml(toml_path) if toml_path else {}
    env_id = str(overrides.get("env_id", from_file.get("env_id", Config.env_id)))
    if env_id not in FUSED_PRESETS:  # every TensorFlow port has a fused preset (tested)
        raise EnvError(
            f"fused mode needs a TensorFlow port of the environment and {env_id!r} has none; "
            f"ported environments: {', '.join(sorted(FUSED_PRESETS))}"
        )
    layered = {**FUSED_PRESETS.get(env_id, {}), **from_file, **overrides, "fused": True}
    return make_config(layered)
