"""What ``a2c evaluate|export|plot|verify`` do with their parsed arguments (``a2c train``:
[`a2c.cli.train_command`][a2c.cli.train_command]).

Each command resolves and checks the user's input before it pays for TensorFlow, then
calls the library (the same functions the notebook and the Python API call) and prints
the outcome. The library is imported inside each command, so that ``a2c --help`` and a
refused flag load nothing heavy. User errors raise [`a2c.common.errors.A2CError`][a2c.common.errors.A2CError],
which [`a2c.cli.main.main`][a2c.cli.main.main] prints on one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from a2c.common.errors import ConfigError
from a2c.common.tf_setup import import_tensorflow_quietly
from a2c.population.members import member_path

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
        from a2c.agent.model import conv_layers, state_size_of
        from a2c.verify.check import verify_model
        from a2c.verify.network import default_model, load_actor_critic

        model = load_actor_critic(args.model) if args.model else default_model(args.seed, args.env)
        if conv_layers(model):
            return _run_verify_conv(args, model)
        if state_size_of(model):
            return _run_verify_recurrent(args, model)
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


def _run_verify_recurrent(args: argparse.Namespace, model: keras.Model) -> int:
    """A recurrent model: a small cell of the same kind three ways through time, and the env
    preset's recurrent model tape vs finite differences ([`a2c.verify.recurrent`][a2c.verify.recurrent]);
    0 if both pass."""
    if args.case != "a2c":
        raise ConfigError(f"--case {args.case} checks feed-forward models; recurrent ones are checked with --case a2c")
    if args.model or args.plot:
        raise ConfigError(
            "recurrent models are checked on their env's preset model (a2c verify --env ENV_ID), "
            "without --model or --plot"
        )
    import dataclasses

    from a2c.agent.model import recurrent_cell_of
    from a2c.verify.recurrent import verify_recurrent, verify_recurrent_default

    cell = recurrent_cell_of(model)
    assert cell is not None  # run_verify routes only models that carry a state here
    kind = cell.kind
    reports = {
        "small_cell": verify_recurrent(kind, seed=args.seed),
        "model": verify_recurrent_default(kind, env_id=args.env, seed=args.seed),
    }
    if args.json:
        print(json.dumps({k: dataclasses.asdict(r) | {"passed": r.passed} for k, r in reports.items()}, default=str))
    else:
        print("\n\n".join(r.table() + f"\npassed: {r.passed}" for r in reports.values()))
    sys.stdout.flush()
    return 0 if all(r.passed for r in reports.values()) else 1


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
