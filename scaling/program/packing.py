"""Which runs can be packed into one vmapped program: same shapes, same steps, same optimizer but the LR."""

from __future__ import annotations

import ml_collections

from scaling.config.loading import to_json_dict
from scaling.errors import ConfigError

# Keys that may differ between the members of a pack; everything else must be equal.
PACKABLE_KEYS = frozenset({
    "seed", "data.seed", "data.train_examples", "data.examples_per_class", "optim.lr", "optim.schedule",
    "optim.warmup_fraction",
    "optim.cooldown_fraction", "train.steps", "train.examples", "train.epochs", "train.flops",
    "train.branch_from", "train.branch_fraction", "wandb.group", "wandb.mode", "wandb.project",
    "tensorboard.enabled",
})


def pack_key(config: ml_collections.ConfigDict) -> str:
    """Configs with equal keys can share one program (given equal step counts, see `check_packable`)."""
    flat = _flatten(to_json_dict(config))
    return repr(sorted((key, repr(value)) for key, value in flat.items() if key not in PACKABLE_KEYS))


def check_packable(configs: list[ml_collections.ConfigDict], lengths: list[tuple[int, int | None]]) -> None:
    """Raise ConfigError naming the first setting that keeps these runs from sharing one program; `lengths`
    are the runs' planned (steps, branch step)."""
    first = _flatten(to_json_dict(configs[0]))
    for index, config in enumerate(configs[1:], start=1):
        flat = _flatten(to_json_dict(config))
        for key in sorted(set(first) | set(flat)):
            if key not in PACKABLE_KEYS and first.get(key) != flat.get(key):
                raise ConfigError(
                    f"cannot pack run {index} with run 0: {key} differs ({flat.get(key)!r} vs {first.get(key)!r}); "
                    f"packed runs may differ only in {', '.join(sorted(PACKABLE_KEYS))}"
                )
    steps = set(lengths)
    if len(steps) > 1:
        raise ConfigError(
            f"cannot pack runs of different lengths {sorted(steps)} (steps, branch step); "
            "give them the same train.steps or train.examples"
        )


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
