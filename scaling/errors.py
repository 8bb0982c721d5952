"""Errors the suite raises for bad input, each naming the problem and the fix."""


class ConfigError(ValueError):
    """A config value is wrong; the message names the field and how to fix it."""


class DataError(RuntimeError):
    """A dataset is missing or unusable; the message says how to get or fix it."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read; the message says which one and how to recover."""
