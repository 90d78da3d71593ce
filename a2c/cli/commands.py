"""What each ``a2c`` subcommand does with its parsed arguments.

Each command resolves and checks the user's input before it pays for TensorFlow, then
calls the library (the same functions the notebook and the Python API call) and prints
the outcome. The library is imported inside each command, so that ``a2c --help`` and a
refused flag load nothing heavy. User errors raise [`a2c.common.errors.A2CError`][a2c.common.errors.A2CError],
which [`a2c.cli.main.main`][a2c.cli.main.main] prints on one line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from a2c.cli.invocation import a2c_command, tool_command
from a2c.common.errors import ConfigError
from a2c.common.tf_setup import import_tensorflow_quietly
from a2c.config.resolve import make_config, make_fused_config
from a2c.config.schema import FIELD_NAMES, Config, coerce, load_toml
from a2c.population.members import POPULATION_FILE, member_configs, member_path, parse_seeds, parse_sweep

if TYPE_CHECKING:  # pragma: no cover
    import keras


def run_evaluate(args: argparse.Namespace) -> int:
    from a2c.artifacts.loading import evaluate_path, resolve_model_path
    from a2c.artifacts.saving import keras_file_of

    path = member_path(args.path, args.member)
    kind, file = resolve_model_path(path)  # a missing or foreign path fails before TensorFlow starts
    if kind == "keras":
        keras_file_of(file)
    import_tensorflow_quietly()
    result, info = evaluate_path(
        path, args.env, episodes=args.episodes, seed=args.seed, sample=args.sample, gif=args.gif
    )
    if args.json:
        print(json.dumps({**info, **result.to_dict()}, indent=2))
        return 0
    s = result.summary()
    print(f"model: {info['model']} ({info['format']}); environment: {info['env_id']} ({info['env_source']})")
    print(f"{info['policy']} policy, {s['episodes']} episodes, seeds {result.seeds[0]}..{result.seeds[-1]}")
    print(
        f"return: {s['mean_return']:.2f} +/- {s['std_return']:.2f} "
        f"(min {s['min_return']:.2f}, max {s['max_return']:.2f}); mean length {s['mean_length']:.1f}"
    )
    if "gif" in info:
        print(
            f"wrote {info['gif']}: episode with seed {info['gif_seed']}, return {info['gif_return']:.2f}, "
            f"{info['gif_frames']} frames"
        )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from a2c.artifacts.export import GREEDY_ENDPOINT, SERVE_ENDPOINT, export_onnx, plan_export, write_export
    from a2c.artifacts.saving import keras_file_of, load_keras_model

    path = keras_file_of(member_path(args.path, args.member))  # checked before TensorFlow starts
    import_tensorflow_quietly()
    plan = plan_export(path, args.out)
    endpoints = f"endpoints: {SERVE_ENDPOINT}, {GREEDY_ENDPOINT}"
    if plan.state == "current" and not args.force:
        out = plan.target
        print(f"{out}/ is up to date with {plan.file} (use --force to rewrite it, --out DIR for another place)")
    else:
        out = write_export(plan)
        if plan.state == "absent":
            print(f"wrote SavedModel {out} ({endpoints})")
        else:
            why = "--force" if plan.state == "current" else plan.reason
            print(f"rewrote SavedModel {out} from {plan.file} ({why}; {endpoints})")
    if args.onnx:
        onnx_file = export_onnx(load_keras_model(plan.file), out.parent / "model.onnx")
        print(f"wrote ONNX {onnx_file}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    """Plot the runs; it reads CSV files and draws with matplotlib, so it never imports TensorFlow."""
    from a2c.analysis.plotting import plot_runs
    from a2c.analysis.run_data import check_run_dir

    out = (
        Path(args.out)
        if args.out
        else (
            Path(args.run_dirs[0]) / "learning_curves.png" if len(args.run_dirs) == 1 else Path("learning_curves.png")
        )
    )
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {out}")
    for run_dir in args.run_dirs:
        check_run_dir(run_dir)
    plot_runs(args.run_dirs, out, args.title)
    print(f"wrote {out}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Run the check described by ``args``; print a table (or JSON); 0 if all pairs agree, else 1."""
    if args.batch is not None and args.batch < 1:
        raise ConfigError(f"--batch must be >= 1; got {args.batch}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0; got {args.seed}")
    if args.case == "seed000" and args.model:
        raise ConfigError("--model does not apply to --case seed000 (it checks its own fixed 2-input, 2-action policy)")
    if args.model:
        from a2c.artifacts.saving import keras_file_of

        keras_file_of(args.model)  # a missing or foreign file fails before TensorFlow starts
    import_tensorflow_quietly()
    if args.case == "seed000":
        from a2c.verify.seed000 import verify_seed000

        report = verify_seed000(seed=args.seed, alpha=args.alpha)
    else:
        from a2c.agent.model import conv_layers
        from a2c.verify.check import verify_model
        from a2c.verify.network import default_model, load_actor_critic

        model = load_actor_critic(args.model) if args.model else default_model(args.seed, args.env)
        if conv_layers(model):
            return _run_verify_conv(args, model)
        report = verify_model(
            model,
            args.case,
            batch=args.batch or 32,
            seed=args.seed,
            vf_coef=args.vf_coef,
            ent_coef=args.ent_coef,
            alpha=args.alpha,
            method=args.method,
        )
        report.settings["model"] = str(args.model) if args.model else f"default {args.env} model"
    if args.plot:
        report.plot(args.plot)
    if args.json:
        print(report.to_json())
    else:
        print(report.table())
        if args.plot:
            print(f"plot: {args.plot}")
    sys.stdout.flush()
    return 0 if report.passed else 1


def _run_verify_conv(args: argparse.Namespace, model: keras.Model) -> int:
    """A convolutional model: tape vs finite differences on it, and the tiny 2-convolution
    net three ways ([`a2c.verify.conv`][a2c.verify.conv]); 0 if both pass."""
    if args.case != "a2c":
        raise ConfigError(f"--case {args.case} checks Dense models; convolutional models are checked with --case a2c")
    from a2c.verify.conv import verify_conv_model, verify_tiny_conv

    reports = {
        "model": verify_conv_model(
            model, batch=args.batch or 4, seed=args.seed, vf_coef=args.vf_coef, ent_coef=args.ent_coef
        ),
        "tiny_conv": verify_tiny_conv(seed=args.seed, vf_coef=args.vf_coef, ent_coef=args.ent_coef),
    }
    reports["model"].settings["model"] = str(args.model) if args.model else f"default {args.env} model"
    if args.plot:
        reports["model"].plot(args.plot)
    if args.json:
        print("{" + ", ".join(f'"{k}": {r.to_json()}' for k, r in reports.items()) + "}")
    else:
        print("\n\n".join(r.table() for r in reports.values()))
        if args.plot:
            print(f"plot: {args.plot}")
    sys.stdout.flush()
    return 0 if all(r.passed for r in reports.values()) else 1


def cmd_train(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in FIELD_NAMES}
    if args.resume is not None:
        # The saved config is the run's: changing it would not continue the same run.
        # Only where the run is shown and which Ray cluster it runs on may change.
        extra = [
            f"--{n.replace('_', '-')}"
            for n, v in overrides.items()
            if v is not None and n not in ("progress", "ray_address")
        ]
        extra += ["--config"] * (args.config is not None) + ["--overwrite"] * args.overwrite
        extra += ["--seeds"] * (args.seeds is not None) + ["--sweep"] * (args.sweep is not None)
        if extra:
            raise ConfigError(f"--resume continues with the run's own config.toml; drop {', '.join(extra)}")
        if (Path(args.resume) / POPULATION_FILE).is_file():
            import_tensorflow_quietly()
            from a2c.population.driver import resume_population

            return _population_done(*resume_population(args.resume))
        import_tensorflow_quietly()
        from a2c.run.train import resume

        result = resume(args.resume, progress=args.progress, ray_address=args.ray_address)
    else:
        # Resolve once, refusing bad flags before paying for TensorFlow; fused mode (by flag or
        # in the TOML file) adds its preset layer (a2c.config.resolve).
        cfg = (make_fused_config if _wants_fused(overrides, args.config) else make_config)(overrides, args.config)
        if args.seeds is not None or args.sweep is not None:
            return _train_population(args, cfg)
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
        print(
            f"greedy evaluation over {s['eval_episodes']} episodes: "
            f"{s['eval_mean_return']:.1f} +/- {s['eval_std_return']:.1f}"
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
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    sweep = parse_sweep(args.sweep or [])
    member_configs(cfg, seeds, sweep)  # every member's values validated before TensorFlow starts
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
