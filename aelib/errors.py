"""The errors aelib raises for bad input: each message says what was wrong and how to fix it."""


class AelibError(ValueError):
    """Base class: bad input to aelib (a wrong shape, an unknown name, a corrupt file, ...)."""


class DataError(AelibError):
    """A data file is missing, truncated or corrupt."""


class CheckpointError(AelibError):
    """A file is not an aelib checkpoint, is of another format version, or holds another model."""


class DivergenceError(AelibError, FloatingPointError):
    """Training diverged: a loss became NaN / infinite or exploded. ``history`` holds the epochs that finished."""
