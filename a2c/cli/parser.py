"""Every argparse definition of the ``a2c`` command line, and nothing else.

Flags for ``train`` are generated from [`a2c.config.schema.Config`][a2c.config.schema.Config], one per field,
with the field's help text. Importing this module never imports TensorFlow (a test
checks it): ``a2c --help`` and a refused flag cost nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Callable, Sequence

from a2c.artifacts.evaluate import DEFAULT_ENV, EVAL_SEED_BASE
from a2c.common.errors import ConfigError
from a2c.config.schema import Config, suggest
from a2c.population.members import SWEEPABLE


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        metavar="PATH",
        help="a run directory, a .keras file or a SavedModel directory (a program: only from a trusted source)",
    )
    parser.add_argument(
        "--env",
        default=None,
        metavar="ENV_ID",
        help="environment (default: the run's config.toml when PATH is or lies in a run "
        f"directory, else the export's metadata, else {DEFAULT_ENV})",
    )
    parser.add_argument("--episodes", type=int, default=100, metavar="N", help="episodes (default: 100)")
    parser.add_argument(
        "--seed",
        type=int,
        default=EVAL_SEED_BASE,
        metavar="S",
        help=f"episode k is reset with seed S+k (default: {EVAL_SEED_BASE})",
    )
    policy = parser.add_mutually_exclusive_group()
    policy.add_argument(
        "--sample",
        action="store_true",
        default=None,
        help="sample actions from the policy (seeded per episode) instead of the greedy action (default: the "
        "run's eval_policy for its own env, else the env's preset's: sampled for Atari, greedy elsewhere)",
    )
    policy.add_argument("--greedy", dest="sample", action="store_false", help="play the greedy action")
    parser.add_argument(
        "--member",
        type=int,
        default=None,
        metavar="K",
        help="with a population run directory (a2c train --seeds/--sweep): member K's model",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--gif", metavar="FILE", default=None, help="record the first episode (seed S) as an animated GIF"
    )


# ----------------------------------------------------------------------------- CLI


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a run directory or a .keras file")
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="SavedModel directory to write (default: saved_model/ in the run directory)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rewrite the SavedModel even when it is already up to date with model.keras",
    )
    parser.add_argument(
        "--member",
        type=int,
        default=None,
        metavar="K",
        help="with a population run directory (a2c train --seeds/--sweep): member K's model",
    )
    parser.add_argument(
        "--onnx", action="store_true", help="also write model.onnx beside the SavedModel (needs the 'onnx' extra)"
    )


# -------------------------------------------------------------------------------- CLI


def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to plot together")
    parser.add_argument(
        "--out",
        metavar="FILE.png",
        default=None,
        help="output PNG (default: RUN_DIR/learning_curves.png for one run, ./learning_curves.png for several)",
    )
    parser.add_argument("--title", default=None, help="figure title (default: the environment and run count)")


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``verify`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--case",
        choices=("seed000", "a2c", "soft"),
        default="a2c",
        help="seed000: the hand-checked soft policy loss of notebooks/walkthrough.ipynb "
        "(section 2) on its 2-input, 2-action, 6-parameter policy; "
        "a2c: a2c_loss's policy, value, entropy and total terms; "
        "soft: the soft policy loss on the model (default: a2c)",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        default=None,
        help="a .keras file or a run directory containing model.keras "
        "(default: a freshly initialised default model of --env)",
    )
    parser.add_argument(
        "--env",
        metavar="ENV_ID",
        default="CartPole-v1",
        help="without --model: check the freshly initialised model of this environment's "
        "preset; the policy head (categorical or Gaussian) follows its action space "
        "(default: CartPole-v1; e.g. Pendulum-v1 for the Gaussian head)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="transitions in the check batch (default: 32, 4 for convolutional models; ignored by seed000)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the check point (and of the default model's weights)"
    )
    parser.add_argument("--vf-coef", type=float, default=0.5, help="value loss weight (default: 0.5)")
    parser.add_argument(
        "--ent-coef",
        type=float,
        default=0.01,
        help="entropy weight (default: 0.01, non-zero so the entropy enters the total)",
    )
    parser.add_argument(
        "--alpha", type=float, default=1.0, help="temperature of the soft policy loss (seed000, soft; default: 1)"
    )
    parser.add_argument(
        "--method",
        choices=("auto", "expanded", "chain"),
        default="auto",
        help="symbolic method: the fully expanded expression, or SymPy derivatives "
        "composed by the chain rule; auto: expanded up to 24 parameters",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the full report as JSON: the point, every gradient, every comparison"
    )
    parser.add_argument(
        "--plot", metavar="FILE", default=None, help="save a log-scale bar chart of the errors to FILE (PNG)"
    )


FLAG_ALIASES = {"env_id": ["--env"], "async_updates": ["--async"]}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hyperparameters (override the env preset and --config)",
        "The defaults shown are the base config's; each environment's preset (and --fused's) replaces some "
        "of them, e.g. CartPole-v1 trains with --n-envs 16 --lr 0.004 --reward-scale 0.1. config.toml in the run "
        "directory records every value a run used.",
    )
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        names = FLAG_ALIASES.get(f.name, []) + [flag]
        kwargs: dict = {"dest": f.name, "default": None, "help": f"{f.metadata['help']} (default: {f.default!r})"}
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = f.name.upper()
        group.add_argument(*names, **kwargs)


#: ``a2c train``'s flags that are not config fields (the hint for a mistyped one comes from these).
TRAIN_ONLY_FLAGS = ("--config", "--overwrite", "--resume", "--seeds", "--sweep")


def _hint(flag: str) -> str | None:
    """The flag a mistyped or foreign one most likely means: a config field's (with
    [`a2c.config.schema.suggest`][a2c.config.schema.suggest]'s aliases, as for a TOML key), else a close
    spelling of ``a2c train``'s other flags."""
    name = flag.lstrip("-")
    field = suggest(name)
    if field is not None:
        return FLAG_ALIASES.get(field, ["--" + field.replace("_", "-")])[0]
    close = difflib.get_close_matches("--" + name.lower().replace("_", "-"), TRAIN_ONLY_FLAGS, n=1, cutoff=0.75)
    return close[0] if close else None


def _is_flag(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return arg.startswith("-") and arg != "-"
    return False  # a (negative) number is a value


def unknown_train_arguments(extra: Sequence[str]) -> ConfigError:
    """The one-line error for the arguments of ``a2c train`` that argparse did not recognise:
    ``unknown flag --learning-rate: did you mean --lr?`` (the values that follow an unknown flag are not named)."""
    flags = [arg.split("=", 1)[0] for arg in extra if _is_flag(arg)]
    if not flags:
        return ConfigError(f"unrecognized arguments: {' '.join(extra)} (a2c train takes flags only, e.g. --env ENV_ID)")
    hints = {flag: _hint(flag) for flag in dict.fromkeys(flags)}
    if len(hints) == 1:
        flag, hint = next(iter(hints.items()))
        return ConfigError(f"unknown flag {flag}" + (f": did you mean {hint}?" if hint else " (see a2c train --help)"))
    return ConfigError(
        "unknown flags " + ", ".join(f"{flag} (did you mean {hint}?)" if hint else flag for flag, hint in hints.items())
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2c", description="Advantage actor-critic for TensorFlow/Keras.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train an agent and write a run directory",
        description="Train an A2C agent. Precedence: defaults < env preset "
        "(< fused preset with --fused) < --config < flags.",
    )
    train.add_argument("--config", metavar="TOML", help="TOML file with any of the hyperparameters below")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run from its newest checkpoint, with the run's own config.toml",
    )
    population = train.add_argument_group(
        "population (fused mode only)",
        "Train many agents in ONE compiled program (a2c.population.loop): each member has its own weights, "
        "optimizer state, envs and random generator, and learns as a single --fused run with its seed and "
        "values would. Members: the --sweep grid x the seeds; files: RUN_DIR/members/<k>/, population.md.",
    )
    population.add_argument(
        "--seeds",
        metavar="SEEDS",
        default=None,
        help="train one member per seed, e.g. 0-63 or 0,4,10-12 (needs --fused)",
    )
    population.add_argument(
        "--sweep",
        metavar="FIELD=V1,V2",
        action="append",
        default=None,
        help="a member per value (times the seeds); repeat for a grid. Sweepable: " + ", ".join(SWEEPABLE),
    )
    _add_config_flags(train)

    add_verify_arguments: Callable[[argparse.ArgumentParser], None] | None
    try:
        from a2c.cli.parser import add_verify_arguments
    except ImportError:  # pragma: no cover - verify is part of the package
        add_verify_arguments = None
    if add_verify_arguments is not None:
        verify = sub.add_parser(
            "verify",
            help="check gradients: GradientTape vs SymPy vs finite differences",
            description="Differentiate one loss three ways (GradientTape, SymPy, central finite differences "
            "in float64) at the same point and compare every pair; exit 1 on a disagreement.",
        )
        add_verify_arguments(verify)

    from a2c.cli.parser import add_evaluate_arguments, add_export_arguments, add_plot_arguments

    add_evaluate_arguments(
        sub.add_parser(
            "evaluate",
            help="evaluate a run directory, .keras file or SavedModel on fresh episodes",
            description="Evaluate a saved policy: one environment per episode, episode k seeded S+k. "
            "Security: a SavedModel is a TensorFlow program (its graph runs as it is loaded and called): evaluate "
            "one only if it comes from a trusted source. A .keras file is checked before it is read and loaded "
            "with Keras' safe mode on: a layer no a2c model has (a Lambda layer's Python code) is refused.",
        )
    )
    add_export_arguments(
        sub.add_parser(
            "export",
            help="export a run's model as a TensorFlow SavedModel",
            description="Write RUN_DIR/saved_model/ (endpoints serve: obs -> probs, value, or for a Gaussian policy "
            "mean, log_std, value; greedy_action: obs -> action, a Gaussian's mean clipped to the "
            "action bounds).",
        )
    )
    add_plot_arguments(
        sub.add_parser(
            "plot",
            help="plot learning curves of one or several runs",
            description="Episode return (mean and spread across runs), losses, entropy and explained variance "
            "as a PNG.",
        )
    )
    return parser
