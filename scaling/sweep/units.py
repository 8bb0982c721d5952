"""Grouping a sweep's points into launch units: single runs, or packs of same-shape runs (jax.vmap)."""

from __future__ import annotations

from scaling.program.packing import pack_key
from scaling.sweep.spec import SweepPoint

Unit = list[SweepPoint]


def launch_units(points: list[SweepPoint], pack_size: int = 1) -> list[Unit]:
    """Points in order, packed `pack_size` at a time when their configs may share one program.

    Packable points differ only in seeds, learning rate and schedule, subset size or duration
    (scaling.program.packing.PACKABLE_KEYS); whether their step counts agree is checked when they train.
    """
    if pack_size <= 1:
        return [[point] for point in points]
    groups: dict[tuple[str, str | None], Unit] = {}
    for point in points:
        groups.setdefault((pack_key(point.load()), point.after), []).append(point)
    units = [group[i:i + pack_size] for group in groups.values() for i in range(0, len(group), pack_size)]
    order = {point.run_id: index for index, point in enumerate(points)}
    return sorted(units, key=lambda unit: order[unit[0].run_id])
