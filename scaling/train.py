"""One training run, end to end: `train_and_evaluate(config, workdir) -> RunResult`.

Phases: check the config against the dataset and devices (before anything compiles); load the nested training subset and the
evaluation split into host memory; build the model and optimizer; restore the latest checkpoint;
compile the sharded step; train with periodic logging, evaluation and checkpoints; write the result.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from scaling import checkpoint, sharding
from scaling.config import to_json_dict
from scaling.data import DatasetFacts, Examples, batch_indices, nested_subset, open_builder, read_examples, read_labels
from scaling.models import build_model, describe_model
from scaling.optim import cooldown_branch, learning_rates, make_optimizer
from scaling.progress import ProgressLine
from scaling.errors import ConfigError, DataError
from scaling.records import RunResult, read_result, write_config, write_result
from scaling.plan import RunPlan, kept_steps, plan_run
from scaling.steps import make_eval_step, make_loss_fn, make_train_step, normalization, split_model
from scaling.tracking import JsonlTracker, Trackers, WandbTracker, read_metrics


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> RunResult:
    """Train and evaluate `config` in `workdir`, resuming from its latest checkpoint; record the outcome.

    A bad config fails before anything is decoded or compiled (recorded only in a fresh workdir, so a
    typo never overwrites an earlier run's result); any later failure is recorded as failed and re-raised.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    result = RunResult(status="running", family=config.model.name)
    started = time.monotonic()
    try:
        plan = plan_run(config)
    except (ConfigError, DataError) as error:
        if read_result(workdir) is None:
            _record_failure(workdir, result, started, error)
        raise
    write_config(workdir, to_json_dict(config))
    try:
        return _train(config, plan, workdir, result, started)
    except BaseException as error:
        _record_failure(workdir, result, started, error)
        raise


def _record_failure(workdir: Path, result: RunResult, started: float, error: BaseException) -> None:
    """Record the run as failed, or as interrupted (resumable) when it was stopped from outside."""
    stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
    result.status, result.error = "interrupted" if stopped else "failed", f"{type(error).__name__}: {error}"
    result.wall_seconds = time.monotonic() - started
    write_result(workdir, result)


def _train(config: ml_collections.ConfigDict, plan: RunPlan, workdir: Path, result: RunResult, started: float) -> RunResult:
    # 1. Sizes, from the validated config.
    data, facts = config.data, plan.facts
    subset_size, num_steps, batch_size = plan.train_examples, plan.num_steps, plan.batch_size

    # 2. Data: the nested class-balanced subset and the evaluation split, as uint8 arrays.
    builder = open_builder(data.name, data.data_dir)
    subset = nested_subset(read_labels(builder, data.train_split), data.train_examples, data.seed)
    train_set = read_examples(builder, data.train_split, subset, data.resolution)
    eval_set = read_examples(builder, data.eval_split, None, data.resolution)
    norm = normalization(train_set.images)

    # 3. Model, optimizer and state on the mesh (parameters replicated, batches split over `data`).
    mesh = sharding.make_mesh(config.mesh)
    model = _initialised_model(config, facts)
    train_graph, eval_graph, params, rest = split_model(model)
    tx = make_optimizer(config.optim)
    rates = learning_rates(config.optim, plan.trunk_steps)
    if plan.branch_step is not None:
        rates = cooldown_branch(rates, plan.branch_step, num_steps)
    state = jax.device_put(
        {"params": params, "rest": rest, "opt_state": tx.init(params)}, sharding.replicated(mesh)
    )
    result.__dict__.update(
        model=describe_model(config.model), width=config.model.width, depth=config.model.get("depth"), params=plan.params,
        flops_per_example=plan.flops_per_example,
        dataset=data.name, num_classes=facts.num_classes, train_examples=subset_size,
        resolution=facts.image_shape[0], batch_size=batch_size, num_steps=num_steps,
        device_kind=jax.devices()[0].device_kind, num_devices=sharding.mesh_size(config.mesh),
    )

    # 4. Resume from the latest complete checkpoint; a new cooldown branch starts from its trunk's.
    keep_steps = kept_steps(config, plan.trunk_steps)
    manager = checkpoint.checkpoint_manager(workdir, config.train.keep_checkpoints, keep_steps)
    start_step, state = checkpoint.restore_latest(manager, state)
    if start_step == 0 and plan.branch_step is not None:
        trunk = workdir.parent / config.train.branch_from
        with checkpoint.checkpoint_manager(trunk, config.train.keep_checkpoints) as trunk_manager:
            start_step, state = plan.branch_step, checkpoint.restore(trunk_manager, plan.branch_step, state)

    # 5. Compile the step ahead of time.
    state_sharding = jax.tree.map(lambda leaf: leaf.sharding, state)
    loss_fn = make_loss_fn(train_graph, config.train.label_smoothing, facts.num_classes)
    train_step = jax.jit(
        make_train_step(loss_fn, tx), donate_argnums=0, out_shardings=(state_sharding, sharding.replicated(mesh))
    )
    example_batch = sharding.global_batch(mesh, *_batch(train_set, batch_size, data.seed, 0))
    norm = jax.device_put(norm, sharding.replicated(mesh))
    compiled_step = train_step.lower(state, *example_batch, norm, np.float32(0.0)).compile()
    eval_step = jax.jit(make_eval_step(eval_graph, facts.num_classes))

    trackers = Trackers([JsonlTracker(workdir, start_step)])
    if config.wandb.mode != "disabled":
        trackers.trackers.append(WandbTracker(
            workdir, config.wandb.mode, config.wandb.project, config.wandb.group, workdir.name, to_json_dict(config)
        ))
    progress = ProgressLine(num_steps, start_step)
    progress.message(
        f"{result.model}: {result.params:,} params, {result.flops_per_example:.3g} train FLOPs/example, "
        f"{subset_size} examples of {data.name}, {num_steps} steps of {batch_size}"
        + (f", resuming at step {start_step}" if start_step else "")
    )

    def evaluate(step: int) -> dict[str, float]:
        metrics = _evaluate(eval_step, state, eval_set, config.train.eval_batch_size, mesh, norm)
        trackers.log(step, {"kind": "eval", "examples_seen": step * batch_size, **metrics})
        return metrics

    # 6. Train: the batch of step s is a pure function of (data.seed, s), so resuming is exact.
    pending, window_start, window_step = [], time.monotonic(), start_step
    step = start_step
    while step < num_steps:
        images, labels = sharding.global_batch(mesh, *_batch(train_set, batch_size, data.seed, step))
        state, metrics = compiled_step(state, images, labels, norm, rates[step])
        pending.append(metrics)
        step += 1
        if step % config.train.log_every_steps == 0 or step == num_steps:
            logged = {key: float(value) for key, value in jax.device_get(_mean(pending)).items()}
            now = time.monotonic()
            speed = (step - window_step) * batch_size / (now - window_start)
            pending, window_start, window_step = [], now, step
            trackers.log(step, {
                "kind": "train", "examples_seen": step * batch_size, "train_loss": logged["loss"],
                "train_top1_error": logged["top1_error"], "grad_norm": logged["grad_norm"],
                "lr": float(rates[step - 1]), "examples_per_second": speed,
            })
            progress.update(step, logged["loss"], speed)
            if not all(math.isfinite(value) for value in logged.values()):
                result.status = "diverged"
                result.error = f"non-finite training metrics at step {step}: {logged}; lower optim.lr or set optim.grad_clip_norm"
                break
        if config.train.eval_every_steps and step % config.train.eval_every_steps == 0 and step < num_steps:
            metrics = evaluate(step)
            progress.message(f"eval at step {step}: top-1 error {metrics['top1_error']:.4f}, loss {metrics['eval_loss']:.4f}")
        if (step % config.train.checkpoint_every_steps == 0 or step in keep_steps) and result.status == "running":
            checkpoint.save(manager, step, state)

    # 7. Final evaluation, checkpoint and records.
    if result.status == "running":
        result.final_eval = evaluate(step)
        checkpoint.save(manager, step, state)
        result.status = "completed"
        progress.message(
            f"done: top-1 error {result.final_eval['top1_error']:.4f}, top-5 error {result.final_eval['top5_error']:.4f}"
        )
    manager.wait_until_finished()
    manager.close()
    trackers.close()
    evals = [line for line in read_metrics(workdir) if line["kind"] == "eval"]
    result.best_eval = min(evals, key=lambda line: line["top1_error"], default=None)
    result.step, result.examples_seen = step, step * batch_size
    result.compute = result.flops_per_example * result.examples_seen
    result.wall_seconds = time.monotonic() - started
    write_result(workdir, result)
    return result


def _initialised_model(config: ml_collections.ConfigDict, facts: DatasetFacts) -> nnx.Module:
    """The model with its initial weights, built in one jitted program from an RBG key of `config.seed`.

    Eager NNX initialisation compiles every initialiser on its own; jitting the whole construction
    and using the RBG generator (cheaper to compile than threefry) cuts start-up several-fold.
    """

    def build() -> nnx.Module:
        rngs = nnx.Rngs(jax.random.key(config.seed, impl="rbg"))
        return build_model(config.model, image_shape=facts.image_shape, num_classes=facts.num_classes, rngs=rngs)

    graph, _ = nnx.split(nnx.eval_shape(build))
    return nnx.merge(graph, jax.jit(lambda: nnx.split(build())[1])())


def _batch(examples: Examples, batch_size: int, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """This process's share of the images and labels of training step `step`."""
    indices = batch_indices(len(examples.labels), batch_size, seed, step)
    local = np.array_split(indices, jax.process_count())[jax.process_index()]
    return examples.images[local], examples.labels[local]


def _mean(metrics: list[dict[str, jax.Array]]) -> dict[str, jax.Array]:
    return {key: jnp.mean(jnp.stack([m[key] for m in metrics])) for key in metrics[0]}


def _evaluate(eval_step, state, examples: Examples, batch_size: int, mesh, norm) -> dict[str, float]:
    """Loss, top-1 and top-5 error over all of `examples`; the last batch is padded and masked."""
    totals = None
    for start in range(0, len(examples.labels), batch_size):
        images = examples.images[start:start + batch_size]
        labels = examples.labels[start:start + batch_size]
        mask = np.ones(len(labels), np.float32)
        pad = batch_size - len(labels)
        if pad:
            images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
            labels, mask = np.pad(labels, (0, pad)), np.pad(mask, (0, pad))
        local = [np.array_split(a, jax.process_count())[jax.process_index()] for a in (images, labels, mask)]
        sums = eval_step(state["params"], state["rest"], *sharding.global_batch(mesh, *local), norm)
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    totals = jax.device_get(totals)
    count = float(totals["count"])
    return {
        "eval_loss": float(totals["loss"]) / count,
        "top1_error": float(totals["top1_wrong"]) / count,
        "top5_error": float(totals["top5_wrong"]) / count,
    }
