"""Evaluation: the pure eval step (adds a batch's sums to running totals), the evaluator compiled ahead of time
with the train step that runs it over a run's evaluation sets, and the metric names they are recorded under."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling.data.pipeline import EvalSet
from scaling.data.prefetch import Prefetcher
from scaling.program import sharding
from scaling.program.steps import Norm, TrainState, preprocess
from scaling.runtime.dispatch import DispatchThrottle

EvalStep = Callable[..., dict[str, jax.Array]]
TOTALS = ("loss", "top1_wrong", "top5_wrong", "count")  # the sums an eval step adds up


def make_eval_step(eval_graph: nnx.GraphDef, num_classes: int) -> EvalStep:
    """A pure step adding a batch's sums over the counted examples (mask=1, at least one target) to `totals`:
    loss, top-1 and top-5 mistakes, count. Targets are multi-hot [B, K]: a prediction is right if it hits any of
    them (one for ImageNet, several for ReaL), and the loss is the cross-entropy against their uniform mixture."""
    k = min(5, num_classes)

    def eval_step(totals, params, rest, images, targets, mask, norm):
        model = nnx.merge(eval_graph, params, rest, copy=True)
        logits = model(preprocess(images, norm))
        valid = targets > 0
        hits = valid.sum(-1)
        counted = mask * (hits > 0)
        loss = optax.softmax_cross_entropy(logits, valid / jnp.maximum(hits, 1)[:, None])
        top_k = jax.lax.top_k(logits, k)[1]
        right = jnp.take_along_axis(valid, top_k, axis=-1)
        sums = {
            "loss": jnp.sum(loss * counted),
            "top1_wrong": jnp.sum(~right[:, 0] * counted),
            "top5_wrong": jnp.sum(~jnp.any(right, axis=-1) * counted),
            "count": jnp.sum(counted),
        }
        return {key: totals[key] + sums[key].astype(totals[key].dtype) for key in TOTALS}

    return eval_step


@dataclasses.dataclass
class Evaluator:
    """A pack's eval step compiled ahead of time for its evaluation batches, run over whole evaluation sets.

    The running totals stay on the devices (one dispatch per batch, a few queued at most), the batches are padded,
    split between the processes and placed on the devices by a background thread while the previous one runs,
    and the totals are fetched once per evaluation set.
    """

    compiled: jax.stages.Compiled
    mesh: jax.sharding.Mesh
    batch_size: int
    members: int

    @classmethod
    def compile(cls, eval_step: Callable, state: TrainState, mesh: jax.sharding.Mesh, batch_size: int,
                example: EvalSet, norms: Norm) -> Evaluator:
        """Compile `eval_step` (jitted, vmapped over the pack) for batches of `batch_size`
        shaped like `example`'s, on the packed `state`'s layout."""
        members = len(jax.tree.leaves(norms)[0])
        batch = sharding.batch_sharded(mesh)
        inputs = [jax.ShapeDtypeStruct((batch_size, *array.shape[1:]), array.dtype, sharding=batch)
                  for array in (example.images, example.targets)]
        mask = jax.ShapeDtypeStruct((batch_size,), np.float32, sharding=batch)
        compiled = eval_step.lower(_zero_totals(mesh, members), state["params"], state["rest"], *inputs, mask,
                                   norms).compile()
        return cls(compiled, mesh, batch_size, members)

    def __call__(self, state: TrainState, eval_sets: Mapping[str, EvalSet], norms: Norm) -> list[dict[str, float]]:
        """Every member's metrics on every evaluation set, under their recorded names (`metric_names`)."""
        metrics: list[dict[str, float]] = [{} for _ in range(self.members)]
        for name, eval_set in eval_sets.items():
            for member_metrics, sums in zip(metrics, self._evaluate_set(state, eval_set, norms), strict=True):
                member_metrics.update(metric_names(name, sums))
        return metrics

    def _evaluate_set(self, state: TrainState, examples: EvalSet, norms: Norm) -> list[dict[str, float]]:
        """Each member's loss, top-1 and top-5 error over all of `examples`."""
        totals, throttle = _zero_totals(self.mesh, self.members), DispatchThrottle()
        with Prefetcher(self._placed_batches(examples)) as batches:
            for images, targets, mask in batches:
                totals = self.compiled(totals, state["params"], state["rest"], images, targets, mask, norms)
                throttle.dispatched(totals)
        totals = sharding.host_value(totals)
        return [
            {
                "eval_loss": float(totals["loss"][i] / totals["count"][i]),
                "top1_error": float(totals["top1_wrong"][i] / totals["count"][i]),
                "top5_error": float(totals["top5_wrong"][i] / totals["count"][i]),
            }
            for i in range(self.members)
        ]

    def _placed_batches(self, examples: EvalSet) -> Iterator[tuple[jax.Array, ...]]:
        """`examples` in batches on the devices; the last one padded with masked zeros."""
        for start in range(0, len(examples.targets), self.batch_size):
            images = examples.images[start:start + self.batch_size]
            targets = examples.targets[start:start + self.batch_size]
            mask = np.ones(len(targets), np.float32)
            pad = self.batch_size - len(targets)
            if pad:
                images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
                targets, mask = np.pad(targets, ((0, pad), (0, 0))), np.pad(mask, (0, pad))
            local = [np.array_split(a, jax.process_count())[jax.process_index()] for a in (images, targets, mask)]
            yield sharding.global_batch(self.mesh, *local)


def metric_names(eval_set: str, metrics: dict[str, float]) -> dict[str, float]:
    """Metric names in records: eval_loss, top1_error, top5_error for the evaluation split; minival_loss and
    minival_error for the minival; NAME_loss, NAME_top1_error, NAME_top5_error for an extra evaluation set."""
    if eval_set == "eval":
        return metrics
    if eval_set == "minival":
        return {"minival_loss": metrics["eval_loss"], "minival_error": metrics["top1_error"]}
    prefix = eval_set.replace("/", "_").replace(":", "_")
    return {f"{prefix}_{key.removeprefix('eval_')}": value for key, value in metrics.items()}


def _zero_totals(mesh: jax.sharding.Mesh, members: int) -> dict[str, jax.Array]:
    """Each member's running sums at zero, replicated on the devices (float32: counts stay exact to 2^24)."""
    return jax.device_put({key: np.zeros(members, np.float32) for key in TOTALS}, sharding.replicated(mesh))
