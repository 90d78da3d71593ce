"""Who is in a population: ``--seeds 0-63`` and ``--sweep lr=1e-3,2e-3`` as member configs.

Kept free of TensorFlow so that the command line refuses a bad spec (``--seeds 5-2``,
``--sweep lr=abc``, an unknown or non-scalar field) in one line before paying for the
TensorFlow import. The members are the grid of swept values (in the order given,
first field slowest) times the seeds (fastest): member ``k`` is one [`Config`][a2c.config.schema.Config],
the base config with its seed and swept values, validated like any run's.

Only scalar hyperparameters that enter the update as numbers can differ between
members ([`SWEEPABLE`][a2c.population.members.SWEEPABLE]): the population trains ONE compiled program, so anything
that changes shapes (``n_envs``, ``hidden_sizes``), the program's structure
(``optimizer``, ``normalize_advantage``, ``lr_schedule``) or the optimizer's constants
(``rms_rho``, ``optimizer_eps``) is shared.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from a2c.common.errors import ConfigError, RunDirError
from a2c.config.schema import FIELD_NAMES, Config, coerce, describe_unknown

#: Hyperparameters a sweep may vary: per-member tensors inside the compiled update.
SWEEPABLE: tuple[str, ...] = ("lr", "gamma", "gae_lambda", "vf_coef", "ent_coef", "max_grad_norm", "reward_scale")

#: Largest population one run accepts (weights, envs and optimizer state all scale with it).
MAX_MEMBERS = 4096


def parse_seeds(text: str) -> list[int]:
    """``"0-63"``, ``"3"``, ``"0,4,10-12"`` -> seeds, in order, without repeats."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError(f"--seeds expects seeds and ranges such as 0-63 or 0,4,10-12; got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ConfigError(f"--seeds range {part} is empty (it runs from {lo} down to {hi}); write {hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text} names a seed twice")
    return seeds


def parse_sweep(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["lr=1e-3,2e-3", "ent_coef=0,0.01"]`` -> ``{"lr": [0.001, 0.002], ...}``."""
    sweep: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = str(spec).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise ConfigError(f"--sweep expects FIELD=V1,V2,...; got {spec!r}")
        if name not in FIELD_NAMES:
            raise ConfigError(f"--sweep: unknown field {describe_unknown([name])}; sweepable: {', '.join(SWEEPABLE)}")
        if name == "seed":
            raise ConfigError("--sweep seed=...: give the seeds with --seeds")
        if name not in SWEEPABLE:
            raise ConfigError(
                f"--sweep: {name} is not a per-member scalar hyperparameter (members share one "
                f"compiled program, its shapes and optimizer); sweepable: {', '.join(SWEEPABLE)}"
            )
        if name in sweep:
            raise ConfigError(f"--sweep names {name} twice")
        try:
            parsed = [coerce(name, v.strip()) for v in values.split(",") if v.strip()]
        except ConfigError as e:
            raise ConfigError(f"--sweep {spec}: {e}") from None
        if len(set(parsed)) != len(parsed):
            raise ConfigError(f"--sweep {name} repeats a value")
        if name == "max_grad_norm" and any(v <= 0 for v in parsed):
            raise ConfigError(
                "--sweep max_grad_norm values must be > 0 (0, no clipping, cannot be mixed "
                "with clipping in one program; set --max-grad-norm 0 for all members instead)"
            )
        sweep[name] = parsed
    return sweep


def member_configs(base: Config, seeds: Sequence[int] | None, sweep: dict[str, list[Any]] | None) -> list[Config]:
    """The grid of ``sweep`` values x ``seeds`` (default: the base seed) as configs."""
    seeds = list(seeds) if seeds else [base.seed]
    sweep = sweep or {}
    grid = list(itertools.product(*sweep.values())) if sweep else [()]
    if len(grid) * len(seeds) > MAX_MEMBERS:
        raise ConfigError(f"a population of {len(grid) * len(seeds)} members is more than {MAX_MEMBERS}")
    members = []
    for values in grid:
        for seed in seeds:
            member = dataclasses.replace(base, seed=seed, **dict(zip(sweep, values)))
            try:
                member.validate()
            except ConfigError as e:
                raise ConfigError(f"--sweep: {e}") from None
            members.append(member)
    return members


def member_label(member: Config, swept: Sequence[str]) -> str:
    """``lr=0.002 seed=3``: what tells a member apart."""
    return " ".join([*(f"{name}={getattr(member, name):g}" for name in swept), f"seed={member.seed}"])


MEMBERS_DIR = "members"
POPULATION_FILE = "population.json"


def member_dir(run_dir: str | Path, k: int) -> Path:
    """Member k's directory in a population run (laid out as a single run's)."""
    return Path(run_dir) / MEMBERS_DIR / str(k)


def member_path(path: str | Path, member: int | None) -> Path:
    """``--member k`` applied to a population run directory (``path`` itself without it)."""
    path = Path(path)
    if member is None:
        if (path / POPULATION_FILE).is_file():
            raise RunDirError(
                f"{path} is a population run: choose a member with --member K "
                f"(its directories are {path / MEMBERS_DIR}/<K>)"
            )
        return path
    if not (path / POPULATION_FILE).is_file():
        raise RunDirError(f"--member needs a population run directory (with {POPULATION_FILE}); {path} is not one")
    target = member_dir(path, member)
    if member < 0 or not target.is_dir():
        count = len([d for d in (path / MEMBERS_DIR).iterdir() if d.is_dir()]) if (path / MEMBERS_DIR).is_dir() else 0
        raise RunDirError(f"{path} has no member {member}; its members are 0..{count - 1}")
    return target
