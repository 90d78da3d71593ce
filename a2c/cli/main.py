"""The ``a2c`` command line: ``a2c train|verify|evaluate|export|plot`` (also ``python -m a2c``).

It first puts the current directory on ``sys.path`` as ``python -m a2c`` does
([`a2c.cli.invocation.put_cwd_on_path`][a2c.cli.invocation.put_cwd_on_path]), so that ``--env module:EnvId``
imports a module of the current directory from the console script too.
Problems with the user's input ([`A2CError`][a2c.common.errors.A2CError]) are printed as
one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from a2c.cli.commands import run_evaluate, run_export, run_plot, run_verify  # noqa: E402
from a2c.cli.invocation import put_cwd_on_path  # noqa: E402
from a2c.cli.parser import build_parser, unknown_train_arguments  # noqa: E402
from a2c.cli.train_command import cmd_train  # noqa: E402
from a2c.common.errors import A2CError  # noqa: E402

COMMANDS = {"train": cmd_train, "verify": run_verify, "evaluate": run_evaluate, "export": run_export, "plot": run_plot}


def main(argv: Sequence[str] | None = None) -> int:
    put_cwd_on_path()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:  # each command checks its flags and paths first, then imports TensorFlow if it needs it
        if extra:  # a flag of another tool or a TOML key's spelling: say which flag it is here
            raise unknown_train_arguments(extra)
        return COMMANDS[args.command](args)
    except A2CError as e:
        print(f"a2c {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM; training's says how to resume
        print(f"a2c {args.command}: {str(e) or 'interrupted'}", file=sys.stderr)
        return getattr(e, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
