"""Commands around training: `scaling bench`, `scaling data`, `scaling models` and `scaling train --dry-run`."""
