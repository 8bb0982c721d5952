"""Configs: loading config files with `--config.x=y` overrides, the locked defaults with the allowed values
beside each key, validation against the dataset and devices, and the historic recipes."""
