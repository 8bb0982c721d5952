"""FLOP counting from XLA. Convention everywhere: 1 multiply-add = 2 FLOPs; training = forward + backward."""

from __future__ import annotations

import jax


def train_flops_per_example(lowered: jax.stages.Lowered, global_batch_size: int) -> float | None:
    """XLA's count of the lowered (global, unpartitioned) train step, per example; None if unavailable."""
    analysis = lowered.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    return float(analysis["flops"]) / global_batch_size
