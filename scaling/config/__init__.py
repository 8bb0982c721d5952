"""Configs: loading config files with `--config.x=y` overrides, the locked defaults with each key's allowed
values (`defaults.FIELDS`, checked by `schema`), validation against the dataset and devices, mesh sizes,
and the historic recipes."""
