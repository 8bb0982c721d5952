"""Loading a sweep definition (`experiments/<name>.py`) and expanding it into points with stable ids."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import ml_collections

from scaling.config.loading import import_file, load_config, run_file_code
from scaling.errors import ConfigError
from scaling.schema import check_value


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the base config file, its overrides and the id that names its workdir."""

    sweep: str
    run_id: str
    config: str  # `configs/x.py[:arg]`
    overrides: tuple[str, ...]  # `key=value` strings, applied after the sweep's own settings
    after: str | None = None  # run id of a point that must finish first (a cooldown branch's trunk)

    def load(self) -> ml_collections.ConfigDict:
        """The point's full config, with the sweep name as the wandb group."""
        config = load_config(self.config, [*self.overrides, f"wandb.group={self.sweep}"])
        return config


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A named list of points, how many same-shape points to pack into one program, and the file's Slurm options
    (its SLURM dict, checked by scaling.sweep.slurm_options)."""

    name: str
    points: list[SweepPoint]
    pack_size: int = 1
    slurm: Any = dataclasses.field(default_factory=dict)


def load_sweep(path: str | Path) -> Sweep:
    """Import `experiments/<name>.py` and expand it.

    The file defines CONFIG (`configs/x.py[:arg]`), get_grid() (see scaling.sweep.grid), and optionally
    NAME, OVERRIDES (settings shared by every point), PACK_SIZE (same-shape points trained together
    with jax.vmap), SLURM (defaults of the Slurm launcher's options) and COOLDOWN_FRACTIONS: then each
    grid point becomes a constant-LR trunk plus one cooldown branch per fraction (Hägele et al. 2024).
    """
    module = import_file(str(path), "sweep", "experiments/demo.py for the shape", ("CONFIG", "get_grid"))
    name = getattr(module, "NAME", Path(path).stem)
    shared, grid = getattr(module, "OVERRIDES", {}), run_file_code(str(path), "sweep", module.get_grid)
    _check_overrides(path, shared, grid)
    if not grid:
        print(f"warning: sweep {name} has no points: get_grid() in {path} returned []", file=sys.stderr)
    fractions = getattr(module, "COOLDOWN_FRACTIONS", ())
    pack_size = getattr(module, "PACK_SIZE", 1)
    check_value(f"COOLDOWN_FRACTIONS in {path}", fractions, "portions")
    check_value(f"PACK_SIZE in {path}", pack_size, "int")
    points = [
        point for grid_point in grid for point in _points(name, module.CONFIG, shared, grid_point, tuple(fractions))
    ]
    duplicates = {p.run_id for p in points if sum(q.run_id == p.run_id for q in points) > 1}
    if duplicates:
        raise ConfigError(f"sweep {name} lists the same point twice: {', '.join(sorted(duplicates))}")
    return Sweep(name=name, points=points, pack_size=pack_size, slurm=getattr(module, "SLURM", {}))


def run_id(config: str, shared: dict[str, Any], swept: dict[str, Any]) -> str:
    """A readable, stable id: the swept values, then a hash of the base config and all overrides."""
    canonical = json.dumps({"config": config, "overrides": {**shared, **swept}}, sort_keys=True, default=str)
    digest = hashlib.sha1(canonical.encode()).hexdigest()[:8]
    readable = "-".join(f"{key.split('.')[-1]}{_short(value)}" for key, value in swept.items())
    return f"{readable[:80]}-{digest}" if readable else digest


def _check_overrides(path: str | Path, shared: Any, grid: Any) -> None:
    """OVERRIDES is a dict of config overrides, and get_grid() returned a list of them."""
    if not isinstance(grid, list):
        raise ConfigError(f"get_grid() in {path} must return a list of override dicts, e.g. "
                          f"sweep('model.width', [8, 16]), got {grid!r}")
    for overrides in [shared, *grid]:
        if not (isinstance(overrides, dict) and all(isinstance(key, str) for key in overrides)):
            raise ConfigError(f"OVERRIDES and the points of get_grid() in {path} must be dicts of config overrides "
                              f"like {{'model.width': 16}}, got {overrides!r}")


def _points(
    sweep: str, config: str, shared: dict[str, Any], swept: dict[str, Any], cooldown_fractions: tuple[float, ...]
) -> list[SweepPoint]:
    """The point of one grid entry, or its trunk and cooldown branches."""
    if not cooldown_fractions:
        return [_point(sweep, config, shared, swept)]
    trunk_settings = {**shared, "optim.schedule": "constant", "train.keep_checkpoint_fractions": cooldown_fractions}
    trunk = _point(sweep, config, trunk_settings, swept)
    branches = [
        _point(sweep, config, {**trunk_settings, "train.branch_from": trunk.run_id, "train.branch_fraction": fraction},
               swept, after=trunk.run_id)
        for fraction in cooldown_fractions
    ]
    return [trunk, *branches]


def _point(
    sweep: str, config: str, shared: dict[str, Any], swept: dict[str, Any], after: str | None = None
) -> SweepPoint:
    overrides = {**shared, **swept}
    texts = tuple(
        f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}" for key, value in overrides.items()
    )
    if after is None:
        identifier = run_id(config, shared, swept)
    else:  # a cooldown branch: named after its trunk and its branch point
        identifier = f"{after}-cooldown{shared['train.branch_fraction']:g}"
    return SweepPoint(sweep=sweep, run_id=identifier, config=config, overrides=texts, after=after)


def dependency_waves(points: list[SweepPoint]) -> list[list[SweepPoint]]:
    """Points grouped so that every point comes in a later wave than the point it runs after."""
    waves: list[list[SweepPoint]] = []
    placed: dict[str, int] = {}
    for point in points:
        wave = placed[point.after] + 1 if point.after in placed else 0
        placed[point.run_id] = wave
        waves.extend([] for _ in range(wave + 1 - len(waves)))
        waves[wave].append(point)
    return waves


def _short(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return "".join(ch for ch in text if ch.isalnum() or ch in ".+")
