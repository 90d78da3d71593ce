"""The top floor: the ``a2c`` command line (argparse definitions, subcommands, main)."""
