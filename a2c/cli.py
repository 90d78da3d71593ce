"""The ``a2c`` command line: ``a2c train|verify|...`` (also ``python -m a2c``).

Flags for ``train`` are generated from :class:`a2c.config.Config`, one per field,
with the field's help text. Problems with the user's input (:class:`A2CError`) are
printed as one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from a2c.config import Config, FIELD_NAMES, coerce, load_toml, make_config  # noqa: E402
from a2c.fused_presets import make_fused_config  # noqa: E402
from a2c.errors import A2CError, ConfigError  # noqa: E402
from a2c.members import POPULATION_FILE, SWEEPABLE, member_configs, parse_seeds, parse_sweep  # noqa: E402
from a2c.tf_setup import import_tensorflow_quietly  # noqa: E402

FLAG_ALIASES = {"env_id": ["--env"], "async_updates": ["--async"]}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hyperparameters (override the env preset and --config)",
        "The defaults shown are the base config's; each environment's preset (and --fused's) replaces some "
        "of them, e.g. CartPole-v1 trains with --n-envs 16 --lr 0.004 --reward-scale 0.1. config.toml in the run "
        "directory records every value a run used.")
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        names = FLAG_ALIASES.get(f.name, []) + [flag]
        kwargs: dict = {"dest": f.name, "default": None, "help": f"{f.metadata['help']} (default: {f.default!r})"}
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = f.name.upper()
        group.add_argument(*names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2c", description="Advantage actor-critic for TensorFlow/Keras.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train an agent and write a run directory",
                           description="Train an A2C agent. Precedence: defaults < env preset "
                                       "(< fused preset with --fused) < --config < flags.")
    train.add_argument("--config", metavar="TOML", help="TOML file with any of the hyperparameters below")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue a stopped run from its newest checkpoint, with the run's own config.toml")
    population = train.add_argument_group(
        "population (fused mode only)",
        "Train many agents in ONE compiled program (a2c.population): each member has its own weights, "
        "optimizer state, envs and random generator, and learns as a single --fused run with its seed and "
        "values would. Members: the --sweep grid x the seeds; files: RUN_DIR/members/<k>/, population.md.")
    population.add_argument("--seeds", metavar="SEEDS", default=None,
                            help="train one member per seed, e.g. 0-63 or 0,4,10-12 (needs --fused)")
    population.add_argument("--sweep", metavar="FIELD=V1,V2", action="append", default=None,
                            help="a member per value (times the seeds); repeat for a grid. Sweepable: "
                                 + ", ".join(SWEEPABLE))
    _add_config_flags(train)

    try:
        from a2c.verify.cli import add_verify_arguments
    except ImportError:  # pragma: no cover - verify is part of the package
        add_verify_arguments = None
    if add_verify_arguments is not None:
        verify = sub.add_parser(
            "verify", help="check gradients: GradientTape vs SymPy vs finite differences",
            description="Differentiate one loss three ways (GradientTape, SymPy, central finite differences "
                        "in float64) at the same point and compare every pair; exit 1 on a disagreement.")
        add_verify_arguments(verify)

    from a2c.loading import add_evaluate_arguments
    from a2c.export import add_export_arguments
    from a2c.plotting import add_plot_arguments

    add_evaluate_arguments(sub.add_parser(
        "evaluate", help="evaluate a run directory, .keras file or SavedModel on fresh episodes",
        description="Evaluate a saved policy: one environment per episode, episode k seeded S+k."))
    add_export_arguments(sub.add_parser(
        "export", help="export a run's model as a TensorFlow SavedModel",
        description="Write RUN_DIR/saved_model/ (endpoints serve: obs -> probs, value, or for a Gaussian policy "
                    "mean, log_std, value; greedy_action: obs -> action, a Gaussian's mean clipped to the "
                    "action bounds)."))
    add_plot_arguments(sub.add_parser(
        "plot", help="plot learning curves of one or several runs",
        description="Episode return (mean and spread across runs), losses, entropy and explained variance as a PNG."))
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in FIELD_NAMES}
    if args.resume is not None:
        # The saved config is the run's: changing it would not continue the same run.
        # Only where the run is shown and which Ray cluster it runs on may change.
        extra = [f"--{n.replace('_', '-')}" for n, v in overrides.items()
                 if v is not None and n not in ("progress", "ray_address")]
        extra += ["--config"] * (args.config is not None) + ["--overwrite"] * args.overwrite
        extra += ["--seeds"] * (args.seeds is not None) + ["--sweep"] * (args.sweep is not None)
        if extra:
            raise ConfigError(f"--resume continues with the run's own config.toml; drop {', '.join(extra)}")
        if (Path(args.resume) / POPULATION_FILE).is_file():
            import_tensorflow_quietly()
            from a2c.population_run import resume_population

            return _population_done(*resume_population(args.resume))
        import_tensorflow_quietly()
        from a2c.train import resume

        result = resume(args.resume, progress=args.progress, ray_address=args.ray_address)
    else:
        # Resolve once, refusing bad flags before paying for TensorFlow; fused mode (by flag or
        # in the TOML file) adds its preset layer (a2c.fused_presets).
        cfg = (make_fused_config if _wants_fused(overrides, args.config) else make_config)(overrides, args.config)
        if args.seeds is not None or args.sweep is not None:
            return _train_population(args, cfg)
        import_tensorflow_quietly()
        if cfg.fused:  # the one-call compiled trainer (a2c.fused)
            from a2c.train import train_fused

            result = train_fused(cfg, overwrite=args.overwrite)
        else:
            from a2c.train import train

            result = train(cfg, overwrite=args.overwrite)
    s = result.summary
    print(f"run directory: {result.run_dir}")
    print(f"trained {s['total_steps']} steps in {s['train_seconds']:.1f} s ({s['steps_per_second']:.0f} steps/s)")
    if s["eval_episodes"]:
        print(f"greedy evaluation over {s['eval_episodes']} episodes: "
              f"{s['eval_mean_return']:.1f} +/- {s['eval_std_return']:.1f}")
    if s.get("model_step") is not None:
        last = s["last_model_eval_mean_return"]
        print(f"model: the best periodic evaluation's, at step {s['model_step']} ({s['selection_mean_return']:.1f} "
              f"over its {s['selection_episodes']} selection episodes)"
              + (f"; the last weights score {last:.1f} on the same final episodes" if last is not None else ""))
    print(next_steps(result.run_dir))
    return 0


def _wants_fused(overrides: dict, toml_path: str | None) -> bool:
    """``--fused`` / ``--no-fused``, else the TOML file's ``fused``, else False."""
    if overrides.get("fused") is not None:
        return bool(overrides["fused"])
    from_file = load_toml(toml_path) if toml_path else {}
    return "fused" in from_file and coerce("fused", from_file["fused"])


def _train_population(args: argparse.Namespace, cfg: Config) -> int:
    """``--seeds`` / ``--sweep``: a population (a2c.population), checked before TensorFlow starts."""
    if not cfg.fused:
        raise ConfigError("--seeds and --sweep train a population in fused mode; add --fused")
    if cfg.keep_best:
        raise ConfigError("keep_best is for single runs; a population keeps each member's last weights "
                          "(drop --keep-best)")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    sweep = parse_sweep(args.sweep or [])
    member_configs(cfg, seeds, sweep)  # every member's values validated before TensorFlow starts
    import_tensorflow_quietly()
    from a2c.population_run import train_population

    return _population_done(*train_population(cfg, seeds or [cfg.seed], sweep, overwrite=args.overwrite))


def _population_done(run_dir: Path, summary: dict) -> int:
    """What ``a2c train`` prints at the end of a population run."""
    run = shlex.quote(str(run_dir))
    print(f"run directory: {run_dir} ({summary['members']} members in members/<k>/)")
    print(f"trained {summary['total_steps_per_member']} steps per member in {summary['train_seconds']:.1f} s "
          f"({summary['steps_per_second']:.0f} steps/s over all members)")
    for g in summary["groups"]:
        if "mean" in g:
            setting = " ".join(f"{k}={g[k]:g}" for k in summary["sweep"]) or "all members"
            solved = "" if g["solved_fraction"] is None else f", solved {g['solved_fraction']:.0%}"
            print(f"{setting}: greedy return {g['mean']:.1f} +/- {g['std']:.1f} (min {g['min']:.1f}) over "
                  f"{g['members']} members{solved}")
    print(f"table: {run_dir / 'population.md'}; curves: {run_dir / 'population_curves.png'}")
    print(f"next steps:\n  a2c evaluate {run} --member 0 --episodes 100\n  a2c export {run} --member 0")
    return 0


def next_steps(run_dir: Path) -> str:
    """What a user can do with a finished run, as commands to copy."""
    from a2c.run_dir import CURVES_FILE

    run = shlex.quote(str(run_dir))
    curves = run_dir / CURVES_FILE
    return "\n".join([
        *([f"learning curves: {curves}"] if curves.is_file() else []),
        "next steps:",
        f"  a2c evaluate {run} --episodes 100 --gif episode.gif",
        f"  a2c plot {run} --out curves.png",
        f"  tensorboard --logdir {shlex.quote(str(run_dir.parent))}",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        import_tensorflow_quietly()
        if args.command == "verify":
            from a2c.verify.cli import run_verify
            return run_verify(args)
        if args.command in ("evaluate", "export"):
            from a2c.members import member_path

            args.path = str(member_path(args.path, args.member))
        if args.command == "evaluate":
            from a2c.loading import run_evaluate
            return run_evaluate(args)
        if args.command == "export":
            from a2c.export import run_export
            return run_export(args)
        if args.command == "plot":
            from a2c.plotting import run_plot
            return run_plot(args)
        parser.error(f"unknown command {args.command}")
    except A2CError as e:
        print(f"a2c {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM; training's says how to resume
        print(f"a2c {args.command}: {str(e) or 'interrupted'}", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
