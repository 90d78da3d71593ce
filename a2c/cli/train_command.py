"""What ``a2c train`` does with its parsed arguments: resolve and check the config (and a population's
members) before TensorFlow starts, train, resume, and print the outcome with the next steps to copy.

Split from [`a2c.cli.commands`][a2c.cli.commands] (the other subcommands) as the largest of them.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from a2c.cli.invocation import a2c_command, tool_command
from a2c.common.errors import ConfigError
from a2c.common.tf_setup import import_tensorflow_quietly
from a2c.config.resolve import make_config, make_fused_config
from a2c.config.schema import FIELD_NAMES, Config, coerce, load_toml
from a2c.population.members import POPULATION_FILE, member_configs, parse_seeds, parse_sweep


def cmd_train(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in FIELD_NAMES}
    if args.resume is not None:
        # The saved config is the run's: changing it would not continue the same run. Only
        # where the run is shown, which Ray cluster it runs on and (to extend it) its budget may change.
        extra = [
            f"--{n.replace('_', '-')}"
            for n, v in overrides.items()
            if v is not None and n not in ("progress", "ray_address", "total_steps")
        ]
        extra += ["--config"] * (args.config is not None) + ["--overwrite"] * args.overwrite
        extra += ["--seeds"] * (args.seeds is not None) + ["--sweep"] * (args.sweep is not None)
        if extra:
            raise ConfigError(f"--resume continues with the run's own config.toml; drop {', '.join(extra)}")
        total_steps = coerce("total_steps", args.total_steps) if args.total_steps is not None else None
        if (Path(args.resume) / POPULATION_FILE).is_file():
            if total_steps is not None:
                raise ConfigError("--total-steps extends single runs; a population resumes with its own budget")
            import_tensorflow_quietly()
            from a2c.population.driver import resume_population

            return _population_done(*resume_population(args.resume))
        import_tensorflow_quietly()
        from a2c.run.train import resume

        result = resume(args.resume, progress=args.progress, ray_address=args.ray_address, total_steps=total_steps)
    else:
        # Resolve once, refusing bad flags before paying for TensorFlow; fused mode (by flag or
        # in the TOML file) adds its preset layer (a2c.config.resolve).
        cfg = (make_fused_config if _wants_fused(overrides, args.config) else make_config)(overrides, args.config)
        if args.seeds is not None or args.sweep is not None:
            return _train_population(args, cfg)
        _say_rounded_budget(cfg)
        import_tensorflow_quietly()
        if cfg.fused:  # the one-call compiled trainer (a2c.trainers.fused)
            from a2c.run.train import train_fused

            result = train_fused(cfg, overwrite=args.overwrite)
        else:
            from a2c.run.train import train

            result = train(cfg, overwrite=args.overwrite)
    s = result.summary
    print(f"run directory: {result.run_dir}")
    print(f"trained {s['total_steps']} steps in {s['train_seconds']:.1f} s ({s['steps_per_second']:.0f} steps/s)")
    if s["eval_episodes"]:
        greedy = s.get("eval_greedy_mean_return")
        print(
            f"{s['eval_policy']} evaluation over {s['eval_episodes']} episodes: "
            f"{s['eval_mean_return']:.1f} +/- {s['eval_std_return']:.1f}"
            + (f" (greedy: {greedy:.1f} +/- {s['eval_greedy_std_return']:.1f})" if greedy is not None else "")
        )
    if s.get("model_step") is not None:
        last = s["last_model_eval_mean_return"]
        print(
            f"model: the best periodic evaluation's, at step {s['model_step']} ({s['selection_mean_return']:.1f} "
            f"over its {s['selection_episodes']} selection episodes)"
            + (f"; the last weights score {last:.1f} on the same final episodes" if last is not None else "")
        )
    print(next_steps(result.run_dir))
    return 0


def rounded_budget(cfg: Config) -> str | None:
    """The line that says a run trains more than ``total_steps``: it trains whole updates of ``n_envs x n_steps``
    steps ([`Config.n_updates`][a2c.config.schema.Config.n_updates]), so a budget that is not a multiple of
    that batch is rounded up to the next one; None when it is a multiple."""
    if cfg.total_steps % cfg.batch_size == 0:
        return None
    return (
        f"total_steps {cfg.total_steps} is not a multiple of the {cfg.batch_size} steps of an update "
        f"(n_envs {cfg.n_envs} x n_steps {cfg.n_steps}): training {cfg.n_updates * cfg.batch_size} steps "
        f"({cfg.n_updates} update{'s' * (cfg.n_updates != 1)})"
    )


def _say_rounded_budget(cfg: Config) -> None:
    note = rounded_budget(cfg)
    if note is not None:
        print(note, flush=True)  # before the run's own output


def _wants_fused(overrides: dict, toml_path: str | None) -> bool:
    """``--fused`` / ``--no-fused``, else the TOML file's ``fused``, else False."""
    if overrides.get("fused") is not None:
        return bool(overrides["fused"])
    from_file = load_toml(toml_path) if toml_path else {}
    return "fused" in from_file and coerce("fused", from_file["fused"])


def _train_population(args: argparse.Namespace, cfg: Config) -> int:
    """``--seeds`` / ``--sweep``: a population (a2c.population.loop), checked before TensorFlow starts."""
    if not cfg.fused:
        raise ConfigError("--seeds and --sweep train a population in fused mode; add --fused")
    if cfg.keep_best:
        raise ConfigError(
            "keep_best is for single runs; a population keeps each member's last weights (drop --keep-best)"
        )
    if cfg.eval_policy != "greedy":
        raise ConfigError(
            "a population evaluates its members greedily, all in one compiled call (drop --eval-policy sampled)"
        )
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    sweep = parse_sweep(args.sweep or [])
    member_configs(cfg, seeds, sweep)  # every member's values validated before TensorFlow starts
    _say_rounded_budget(cfg)  # n_envs and n_steps are shared by every member
    import_tensorflow_quietly()
    from a2c.population.driver import train_population

    return _population_done(*train_population(cfg, seeds or [cfg.seed], sweep, overwrite=args.overwrite))


def _population_done(run_dir: Path, summary: dict) -> int:
    """What ``a2c train`` prints at the end of a population run."""
    run = shlex.quote(str(run_dir))
    print(f"run directory: {run_dir} ({summary['members']} members in members/<k>/)")
    print(
        f"trained {summary['total_steps_per_member']} steps per member in {summary['train_seconds']:.1f} s "
        f"({summary['steps_per_second']:.0f} steps/s over all members)"
    )
    for g in summary["groups"]:
        if "mean" in g:
            setting = " ".join(f"{k}={g[k]:g}" for k in summary["sweep"]) or "all members"
            solved = "" if g["solved_fraction"] is None else f", solved {g['solved_fraction']:.0%}"
            print(
                f"{setting}: greedy return {g['mean']:.1f} +/- {g['std']:.1f} (min {g['min']:.1f}) over "
                f"{g['members']} members{solved}"
            )
    print(f"table: {run_dir / 'population.md'}; curves: {run_dir / 'population_curves.png'}")
    a2c = a2c_command()
    print(f"next steps:\n  {a2c} evaluate {run} --member 0 --episodes 100\n  {a2c} export {run} --member 0")
    return 0


def next_steps(run_dir: Path) -> str:
    """What a user can do with a finished run, as commands to copy: ``a2c`` spelled as it runs from here
    ([`a2c_command`][a2c.cli.invocation.a2c_command]: ``.venv/bin/a2c`` when no ``a2c`` on PATH is this one)."""
    from a2c.run.run_dir import CURVES_FILE

    run = shlex.quote(str(run_dir))
    curves = run_dir / CURVES_FILE
    a2c = a2c_command()
    return "\n".join(
        [
            *([f"learning curves: {curves}"] if curves.is_file() else []),
            "next steps:",
            f"  {a2c} evaluate {run} --episodes 100 --gif episode.gif",
            f"  {a2c} plot {run} --out curves.png",
            f"  {tool_command('tensorboard')} --logdir {shlex.quote(str(run_dir.parent))}",
        ]
    )
