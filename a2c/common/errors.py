"""User-facing errors.

Anything raised as an [`A2CError`][a2c.common.errors.A2CError] is a problem with what the user asked for
(a bad flag, an unknown environment, a missing model file). The command line prints
its message on one line and exits non-zero instead of dumping a traceback; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class A2CError(Exception):
    """Base class of every error the command line reports without a traceback."""


class ConfigError(A2CError, ValueError):
    """A hyperparameter or config file is invalid."""


class EnvError(A2CError, ValueError):
    """An environment id is unknown or its spaces are not supported."""


class ModelFileError(A2CError, ValueError):
    """A model path is missing, corrupt, or does not fit the environment."""


class RunDirError(A2CError, ValueError):
    """A run directory is missing, incomplete or would be overwritten."""


class NonFiniteError(A2CError, FloatingPointError):
    """A loss, a gradient or a weight became NaN or infinite; training stopped."""


class WriteError(A2CError, OSError):
    """A file could not be written (a full disk, a quota, a file size limit); what was there before
    is intact."""
