"""The evaluator compiled with the train step: each member's loss, top-1 and top-5 error over a whole evaluation
set whose size is not a multiple of the batch (the last batch padded and masked), against the same numbers
computed here in numpy from the model's logits of each example alone (softmax cross-entropy against the
uniform mixture of a multi-hot target; a prediction is right if it hits any target)."""

import jax
import numpy as np
from flax import nnx
from helpers import tiny_config

from scaling.config.validation import validate_compute
from scaling.data import DatasetFacts
from scaling.data.pipeline import EvalSet
from scaling.program import sharding
from scaling.program.build import build_program
from scaling.program.evaluation import Evaluator
from scaling.program.steps import preprocess

DIGITS = DatasetFacts("digits", 10, (8, 8, 1), {})


def expected(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Mean loss and top-1/top-5 error over the examples with at least one target, by hand."""
    counted = targets.sum(1) > 0
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    mixture = targets / np.maximum(targets.sum(1, keepdims=True), 1)
    loss = -(mixture * log_softmax).sum(1)
    ranked = np.argsort(-logits, axis=1)
    top1_right = targets[np.arange(len(targets)), ranked[:, 0]] > 0
    top5_right = np.array([targets[i, ranked[i, :5]].any() for i in range(len(targets))])
    return {"eval_loss": loss[counted].mean(), "top1_error": 1 - top1_right[counted].mean(),
            "top5_error": 1 - top5_right[counted].mean()}


def test_each_member_is_scored_over_the_whole_set_with_a_padded_last_batch() -> None:
    config = tiny_config("resnet", "unused", "train.steps=1", "model.depth=4", "model.num_stages=1")
    program = build_program(config, validate_compute(config, DIGITS))
    states = [program.initial_state(np.int32(seed)) for seed in (0, 1)]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(21, 8, 8, 1), dtype=np.uint8)  # 21 = 2 batches of 8 and 5 more
    targets = np.zeros((21, 10), np.uint8)
    targets[np.arange(21), rng.integers(0, 10, 21)] = 1
    targets[3, [2, 7]] = 1  # a multi-hot target (ReaL)
    targets[4] = 0  # an example without a target is not counted
    norm = {"mean": np.float32([0.4]), "std": np.float32([0.3])}
    norms = jax.device_put({key: np.stack([value, value]) for key, value in norm.items()},
                           sharding.replicated(program.mesh))
    eval_set = EvalSet(images, targets)
    evaluator = Evaluator.compile(program.eval_step, program.stack(*states), program.mesh, 8, eval_set, norms)
    metrics = evaluator(program.stack(*states), {"eval": eval_set, "minival": eval_set}, norms)
    assert len(metrics) == 2
    for state, member in zip(states, metrics, strict=True):
        model = nnx.merge(program.eval_graph, state["params"], state["rest"])
        logits = np.asarray(model(preprocess(images, norm)), np.float64)
        want = expected(logits, targets)
        for key, value in want.items():
            np.testing.assert_allclose(member[key], value, rtol=1e-4, atol=1e-6)
        assert member["minival_loss"] == member["eval_loss"] and member["minival_error"] == member["top1_error"]
    assert metrics[0]["eval_loss"] != metrics[1]["eval_loss"]  # each member scored on its own state
