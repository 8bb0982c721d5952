"""Errors the suite raises for bad input, each naming the problem and the fix, and the exit statuses."""

USAGE_EXIT = 2  # bad input or a damaged file, said in one `error:` line before anything ran
PREEMPTED_EXIT = 3  # stopped by SIGTERM after checkpointing; the same command resumes


class ConfigError(ValueError):
    """A config value is wrong; the message names the field and how to fix it."""


class DataError(RuntimeError):
    """A dataset is missing or unusable; the message says how to get or fix it."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read; the message says which one and how to recover."""


class BusyError(RuntimeError):
    """Another process holds the lock of a workdir or sweep root; the message names it (PID and host)."""


class RecordError(RuntimeError):
    """A run's record (result.json, config.json, metrics.jsonl) is damaged; the message names the file and the fix."""
