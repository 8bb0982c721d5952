"""Evaluation: the pure eval step (sums over a batch), the loop over a run's evaluation sets, and the
metric names they are recorded under."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling.data.pipeline import EvalSet
from scaling.program import sharding
from scaling.program.steps import Norm, TrainState, preprocess

EvalStep = Callable[..., dict[str, jax.Array]]


def make_eval_step(eval_graph: nnx.GraphDef, num_classes: int) -> EvalStep:
    """A pure step returning sums over the counted examples (mask=1, at least one target): loss, top-1 and
    top-5 mistakes, count. Targets are multi-hot [B, K]: a prediction is right if it hits any of them (one
    for ImageNet, several for ReaL), and the loss is the cross-entropy against their uniform mixture."""
    k = min(5, num_classes)

    def eval_step(params, rest, images, targets, mask, norm):
        model = nnx.merge(eval_graph, params, rest, copy=True)
        logits = model(preprocess(images, norm))
        valid = targets > 0
        hits = valid.sum(-1)
        counted = mask * (hits > 0)
        loss = optax.softmax_cross_entropy(logits, valid / jnp.maximum(hits, 1)[:, None])
        top_k = jax.lax.top_k(logits, k)[1]
        right = jnp.take_along_axis(valid, top_k, axis=-1)
        return {
            "loss": jnp.sum(loss * counted),
            "top1_wrong": jnp.sum(~right[:, 0] * counted),
            "top5_wrong": jnp.sum(~jnp.any(right, axis=-1) * counted),
            "count": jnp.sum(counted),
        }

    return eval_step


def evaluate(eval_step: EvalStep, state: TrainState, eval_sets: Mapping[str, EvalSet], batch_size: int,
             mesh: jax.sharding.Mesh, norms: Norm) -> list[dict[str, float]]:
    """Every member's metrics on every evaluation set of a pack, under their recorded names (`metric_names`)."""
    metrics: list[dict[str, float]] = []
    for name, eval_set in eval_sets.items():
        per_member = _evaluate_set(eval_step, state, eval_set, batch_size, mesh, norms)
        metrics = metrics or [{} for _ in per_member]
        for member_metrics, sums in zip(metrics, per_member, strict=True):
            member_metrics.update(metric_names(name, sums))
    return metrics


def metric_names(eval_set: str, metrics: dict[str, float]) -> dict[str, float]:
    """Metric names in records: eval_loss, top1_error, top5_error for the evaluation split; minival_loss and
    minival_error for the minival; NAME_loss, NAME_top1_error, NAME_top5_error for an extra evaluation set."""
    if eval_set == "eval":
        return metrics
    if eval_set == "minival":
        return {"minival_loss": metrics["eval_loss"], "minival_error": metrics["top1_error"]}
    prefix = eval_set.replace("/", "_").replace(":", "_")
    return {f"{prefix}_{key.removeprefix('eval_')}": value for key, value in metrics.items()}


def _evaluate_set(eval_step: EvalStep, state: TrainState, examples: EvalSet, batch_size: int,
                  mesh: jax.sharding.Mesh, norms: Norm) -> list[dict[str, float]]:
    """Each member's loss, top-1 and top-5 error over all of `examples`; the last batch is padded and masked."""
    totals = None
    for start in range(0, len(examples.targets), batch_size):
        images = examples.images[start:start + batch_size]
        labels = examples.targets[start:start + batch_size]
        mask = np.ones(len(labels), np.float32)
        pad = batch_size - len(labels)
        if pad:
            images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
            labels, mask = np.pad(labels, ((0, pad), (0, 0))), np.pad(mask, (0, pad))
        local = [np.array_split(a, jax.process_count())[jax.process_index()] for a in (images, labels, mask)]
        sums = eval_step(state["params"], state["rest"], *sharding.global_batch(mesh, *local), norms)
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    totals = sharding.host_value(totals)
    return [
        {
            "eval_loss": float(totals["loss"][i] / totals["count"][i]),
            "top1_error": float(totals["top1_wrong"][i] / totals["count"][i]),
            "top5_error": float(totals["top5_wrong"][i] / totals["count"][i]),
        }
        for i in range(len(totals["count"]))
    ]
