"""Errors that the CLI turns into one readable line and exit code 2."""

from __future__ import annotations


class GanforgeError(Exception):
    """Base class of every error ganforge raises on purpose (bad input, refused files)."""


class ConfigError(GanforgeError, ValueError):
    """A config value is wrong. The message names the config path and what is allowed."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"config {path}: {message}" if path else f"config: {message}")


class DataError(GanforgeError, ValueError):
    """A data file or dataset parameter is wrong; the message names the file (and index)."""


class CheckpointError(GanforgeError):
    """A checkpoint is damaged, foreign, or belongs to a different config."""


class DivergenceError(GanforgeError):
    """Training diverged and could not be recovered."""


class TrainingStopped(Exception):
    """Training stopped on SIGTERM or SIGINT after writing a checkpoint of the step it had reached.

    Not a GanforgeError: nothing was wrong with the input. The CLI exits with 128 + the signal number.
    """

    def __init__(self, signum: int, step: int, saved: bool):
        import signal

        self.signum, self.step, self.saved = signum, step, saved
        what = "checkpoint written" if saved else "no checkpoint written: the state had diverged (the last good one stays)"
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; {what}")
