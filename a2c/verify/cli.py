"""``a2c verify``: check the loss gradients three ways from the command line.

Exit status 0 when every pair of methods agrees within tolerance, 1 otherwise;
user errors (a bad model path, ...) raise :class:`a2c.errors.A2CError` for the main
CLI to print on one line. This module imports nothing heavy until ``run_verify``.
"""

from __future__ import annotations

import argparse
import sys

from a2c.errors import ConfigError


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``verify`` subcommand's options to ``parser``."""
    parser.add_argument("--case", choices=("seed000", "a2c", "soft"), default="a2c",
                        help="seed000: the hand-checked soft policy loss of notebooks/walkthrough.ipynb "
                             "(section 2) on its 2-input, 2-action, 6-parameter policy; "
                             "a2c: a2c_loss's policy, value, entropy and total terms; "
                             "soft: the soft policy loss on the model (default: a2c)")
    parser.add_argument("--model", metavar="PATH", default=None,
                        help="a .keras file or a run directory containing model.keras "
                             "(default: a freshly initialised default model of --env)")
    parser.add_argument("--env", metavar="ENV_ID", default="CartPole-v1",
                        help="without --model: check the freshly initialised model of this environment's "
                             "preset; the policy head (categorical or Gaussian) follows its action space "
                             "(default: CartPole-v1; e.g. Pendulum-v1 for the Gaussian head)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="transitions in the check batch (default: 32, 4 for convolutional models; "
                             "ignored by seed000)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the check point (and of the default model's weights)")
    parser.add_argument("--vf-coef", type=float, default=0.5, help="value loss weight (default: 0.5)")
    parser.add_argument("--ent-coef", type=float, default=0.01,
                        help="entropy weight (default: 0.01, non-zero so the entropy enters the total)")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="temperature of the soft policy loss (seed000, soft; default: 1)")
    parser.add_argument("--method", choices=("auto", "expanded", "chain"), default="auto",
                        help="symbolic method: the fully expanded expression, or SymPy derivatives "
                             "composed by the chain rule; auto: expanded up to 24 parameters")
    parser.add_argument("--json", action="store_true",
                        help="print the full report as JSON: the point, every gradient, every comparison")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="save a log-scale bar chart of the errors to FILE (PNG)")


def run_verify(args: argparse.Namespace) -> int:
    """Run the check described by ``args``; print a table (or JSON); 0 if all pairs agree, else 1."""
    if args.batch is not None and args.batch < 1:
        raise ConfigError(f"--batch must be >= 1; got {args.batch}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0; got {args.seed}")
    if args.case == "seed000":
        if args.model:
            raise ConfigError("--model does not apply to --case seed000 "
                              "(it checks its own fixed 2-input, 2-action policy)")
        from a2c.verify.seed000 import verify_seed000

        report = verify_seed000(seed=args.seed, alpha=args.alpha)
    else:
        from a2c.model import conv_layers
        from a2c.verify.check import verify_model
        from a2c.verify.network import default_model, load_actor_critic

        model = load_actor_critic(args.model) if args.model else default_model(args.seed, args.env)
        if conv_layers(model):
            return _run_verify_conv(args, model)
        report = verify_model(
            model, args.case, batch=args.batch or 32, seed=args.seed, vf_coef=args.vf_coef,
            ent_coef=args.ent_coef, alpha=args.alpha, method=args.method,
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


def _run_verify_conv(args: argparse.Namespace, model) -> int:
    """A convolutional model: tape vs finite differences on it, and the tiny 2-convolution
    net three ways (:mod:`a2c.verify.conv`); 0 if both pass."""
    if args.case != "a2c":
        raise ConfigError(f"--case {args.case} checks Dense models; convolutional models are checked with --case a2c")
    from a2c.verify.conv import verify_conv_model, verify_tiny_conv

    reports = {"model": verify_conv_model(model, batch=args.batch or 4, seed=args.seed, vf_coef=args.vf_coef,
                                          ent_coef=args.ent_coef),
               "tiny_conv": verify_tiny_conv(seed=args.seed, vf_coef=args.vf_coef, ent_coef=args.ent_coef)}
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
