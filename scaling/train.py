"""Training end to end: `train_and_evaluate(config, workdir)` for one run, `train_packed` for several.

Phases: check every config against the dataset and devices (before anything compiles); load each
run's nested training subset and the evaluation split into host memory; build the models and
optimizer, laid out on the mesh; restore the latest checkpoints; compile one sharded step, vmapped
over the runs of a pack (a single run is a pack of one); train with periodic logging, evaluation
and checkpoints; write each run's result.

Across processes (`jax.distributed`), every process runs this same code on its share of each batch;
all of them write checkpoints (orbax), only process 0 writes config, metrics and results. SIGTERM
checkpoints and stops (`preempted`); a non-finite loss or gradient stops a run (`diverged`) before any
checkpoint of the bad state is written.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from scaling.workdir import checkpoint

from scaling.program import sharding
from scaling.runtime.compile_cache import persistent_compilation_cache
from scaling.config.loading import to_json_dict
from scaling.data import open_builder
from scaling.runtime.devices import model_flops_utilization, peak_flops_per_second
from scaling.data.pipeline import EvalSet, RunData, open_run_data
from scaling.errors import CheckpointError, ConfigError, DataError
from scaling.models import describe_model
from scaling.program.optim import cooldown_branch, learning_rates
from scaling.program.packing import check_packable
from scaling.plan import RunPlan, kept_steps, plan_run
from scaling.runtime.preemption import PreemptionWatch
from scaling.program.build import Program, build_program
from scaling.runtime.progress import ProgressLine
from scaling.workdir.records import RunResult, check_config, read_result, write_config, write_result
from scaling.program.steps import Norm, TrainState, make_eval_step, normalization
from scaling.workdir.tracking import JsonlTracker, Tracker, Trackers, WandbTracker, read_metrics


@dataclasses.dataclass
class Member:
    """One run of a pack: its config, workdir, plan, data, schedule, checkpoints and records."""

    config: ml_collections.ConfigDict
    workdir: Path
    plan: RunPlan
    result: RunResult
    data: RunData | None = None
    norm: Norm | None = None
    rates: np.ndarray | None = None
    keep_steps: set[int] = dataclasses.field(default_factory=set)
    manager: ocp.CheckpointManager | None = None
    trackers: Tracker | None = None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> RunResult:
    """Train and evaluate `config` in `workdir`, resuming from its latest checkpoint; record the outcome.

    A bad config fails before anything is decoded or compiled (recorded only in a fresh workdir, so a
    typo never overwrites an earlier run's result); any later failure is recorded as failed and re-raised.
    """
    return train_packed([config], [workdir])[0]


def train_packed(configs: list[ml_collections.ConfigDict], workdirs: list[str | Path]) -> list[RunResult]:
    """Train runs that share shapes and step counts together in one vmapped program.

    Each run keeps its own workdir, checkpoints, metrics and result, exactly as if trained alone
    (seeds, learning rates and subset sizes may differ; see scaling.program.packing).
    """
    started = time.monotonic()
    members = []
    for config, workdir in zip(configs, map(Path, workdirs), strict=True):
        workdir.mkdir(parents=True, exist_ok=True)
        result = RunResult(status="running", family=config.model.name, pack_size=len(configs))
        try:
            members.append(Member(config, workdir, plan_run(config), result))
        except (ConfigError, DataError) as error:
            if read_result(workdir) is None:
                _record_failure(workdir, result, started, error)
            raise
    check_packable(configs, [member.plan for member in members])
    for member in members:  # every process checks, so that all of them stop on a different config
        (write_config if _writes_records() else check_config)(member.workdir, to_json_dict(member.config))
    try:
        with persistent_compilation_cache(configs[0].train.compilation_cache_dir) as cache_counts, \
                PreemptionWatch() as preemption:
            return _train(members, started, preemption, cache_counts)
    except BaseException as error:
        for member in members:
            _record_failure(member.workdir, member.result, started, error)
        raise


def _writes_records() -> bool:
    """Whether this process writes config.json, metrics and result.json (process 0 of a multi-host run)."""
    return jax.process_index() == 0


def _record_failure(workdir: Path, result: RunResult, started: float, error: BaseException) -> None:
    """Record the run as failed, or as interrupted (resumable) when it was stopped from outside."""
    stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
    result.status, result.error = "interrupted" if stopped else "failed", f"{type(error).__name__}: {error}"
    result.wall_seconds = time.monotonic() - started
    if _writes_records():
        write_result(workdir, result)


def _train(members: list[Member], started: float, preemption: PreemptionWatch,
           cache_counts: Callable[[], dict[str, int]]) -> list[RunResult]:
    # 1. Sizes and settings shared by the pack (check_packable made sure they agree).
    lead = members[0]
    config, plan, facts = lead.config, lead.plan, lead.plan.facts
    num_steps, batch_size = plan.num_steps, plan.batch_size

    # 2. Data: each run's nested class-balanced subset (cached uint8 images, or streamed), and the
    #    evaluation sets (the evaluation split restricted to the run's classes, and the minival).
    builder = open_builder(config.data.name, config.data.data_dir)
    for member in members:
        member.data = open_run_data(member.config, builder, member.plan.facts, member.plan.selection,
                                    jax.process_index(), jax.process_count())
        member.norm = normalization(member.data.norm_sample)
    eval_sets = lead.data.eval_sets

    # 3. Models, optimizer, schedules, and the state's layout on the mesh (scaling.program.sharding's rules).
    program = build_program(config, facts)
    mesh = program.mesh
    replicated = sharding.replicated(mesh)
    for member in members:
        member.rates = learning_rates(member.config.optim, member.plan.trunk_steps)
        if member.plan.branch_step is not None:
            member.rates = cooldown_branch(member.rates, member.plan.branch_step, num_steps)
        member.keep_steps = kept_steps(member.config, member.plan.trunk_steps)
        member.result.__dict__.update(
            model=describe_model(member.config.model), width=member.config.model.width,
            depth=member.config.model.get("depth"), params=member.plan.params,
            flops_per_example=member.plan.flops_per_example, dataset=member.config.data.name,
            num_classes=facts.num_classes, train_examples=member.plan.train_examples,
            resolution=facts.image_shape[0], batch_size=batch_size, num_steps=num_steps,
            device_kind=jax.devices()[0].device_kind, num_devices=mesh.devices.size,
        )

    # 4. Resume every run from its newest readable checkpoint (a new cooldown branch from its trunk's);
    #    a run starting afresh is initialised in place on the mesh.
    start_step, states = _restore(members, program)
    state = program.stack(*states)
    del states
    norms = jax.device_put(jax.tree.map(lambda *leaves: np.stack(leaves), *[m.norm for m in members]), replicated)
    rates = np.stack([member.rates for member in members])

    # 5. Compile the step (vmapped over the pack) ahead of time, on the first batch.
    streams = [member.data.train.iterate(start_step) for member in members]
    seeds = np.array([member.config.data.seed for member in members], np.int32)

    def batch_of(step: int) -> tuple[jax.Array, ...]:
        """The next batches of every member as global arrays, and their augmentation seeds (data seed, step)."""
        images, labels = zip(*(next(stream) for stream in streams))
        rng = np.stack([seeds, np.full_like(seeds, step)], 1)
        return (*sharding.global_batch(mesh, np.stack(images), np.stack(labels), packed=True), norms,
                rates[:, min(step, num_steps - 1)], rng)

    batch = batch_of(start_step)
    compiled_step = program.train_step.lower(state, *batch).compile()
    eval_step = jax.jit(jax.vmap(make_eval_step(program.eval_graph, facts.num_classes),
                                 in_axes=(0, 0, None, None, None, 0)))

    for member in members:
        trackers = [JsonlTracker(member.workdir, start_step)] if _writes_records() else []
        if member.config.wandb.mode != "disabled" and _writes_records():
            wandb = member.config.wandb
            trackers.append(WandbTracker(member.workdir, wandb.mode, wandb.project, wandb.group,
                                         member.workdir.name, to_json_dict(member.config)))
        member.trackers = Trackers(trackers)
    peak = _peak_flops(mesh, config.train.compute_dtype)
    progress = ProgressLine(num_steps, start_step, silent=not _writes_records())
    progress.message(
        f"{lead.result.model}: {plan.params:,} params, {plan.flops_per_example:.3g} train FLOPs/example, "
        f"{', '.join(str(m.plan.train_examples) for m in members)} examples of {config.data.name}, "
        f"{num_steps} steps of {batch_size}" + (f" for {len(members)} packed runs" if len(members) > 1 else "")
        + (f", resuming at step {start_step}" if start_step else "")
    )

    def running() -> list[int]:
        return [i for i, member in enumerate(members) if member.result.status == "running"]

    def evaluate(step: int) -> list[dict[str, float]]:
        metrics = [{} for _ in members]
        for name, eval_set in eval_sets.items():
            results = _evaluate(eval_step, state, eval_set, config.train.eval_batch_size, mesh, norms)
            for member_metrics, result in zip(metrics, results):
                member_metrics.update(_metric_names(name, result))
        for i in running():
            members[i].trackers.log(step, {"kind": "eval", "examples_seen": step * batch_size, **metrics[i]})
        return metrics

    def stop_diverged(window: dict[str, np.ndarray], first_step: int) -> None:
        """Mark every running member whose loss or gradient norm was non-finite in `window` as diverged."""
        bad = ~(np.isfinite(window["loss"]) & np.isfinite(window["grad_norm"]))
        for i in running():
            if bad[:, i].any():
                _mark_diverged(members[i], first_step + int(np.argmax(bad[:, i])))

    # 6. Train: the batch of step s is a pure function of (data.seed, s), so resuming is exact.
    pending, window_start, window_step = [], time.monotonic(), start_step
    step = start_step
    while step < num_steps and running():
        state, metrics = compiled_step(state, *batch)
        pending.append(metrics)
        step += 1
        if step < num_steps:
            batch = batch_of(step)
        preempted = preemption.requested(step)
        saving = [i for i in running() if preempted or step % config.train.checkpoint_every_steps == 0
                  or step in members[i].keep_steps]
        if step % config.train.log_every_steps == 0 or step == num_steps or saving:
            window = {key: np.stack(values) for key, values in sharding.host_value(_transpose(pending)).items()}
            stop_diverged(window, window_step + 1)
        if step % config.train.log_every_steps == 0 or step == num_steps:
            logged = {key: values.mean(0) for key, values in window.items()}
            now = time.monotonic()
            speed = (step - window_step) * batch_size / (now - window_start)
            pending, window_start, window_step = [], now, step
            for i in running():
                _log_train(members[i], step, {key: float(value[i]) for key, value in logged.items()}, speed, peak)
            if running():
                mfu = sum(model_flops_utilization(members[i].plan.flops_per_example, speed, mesh.devices.size, peak)
                          for i in running()) if peak else None
                progress.update(step, float(np.mean(logged["loss"][running()])), speed * len(members),
                                f"MFU {mfu:.1%}" if mfu is not None else "")
        if config.train.eval_every_steps and step % config.train.eval_every_steps == 0 and step < num_steps and running():
            top1 = [evaluate(step)[i]["top1_error"] for i in running()]
            progress.message(f"eval at step {step}: top-1 error {', '.join(f'{e:.4f}' for e in top1)}")
        for i in running():
            if i in saving:
                checkpoint.save(members[i].manager, step, program.member_state(state, i))
        if preempted and step < num_steps:
            for i in running():
                members[i].result.status, members[i].result.step = "preempted", step
                members[i].result.error = (f"preempted at step {step} (SIGTERM or the scheduler's warning signal); "
                                           "run the same command again to resume")
            progress.message(f"preempted: checkpointed step {step}; run the same command again to resume")

    # 7. Final evaluation, checkpoints and records.
    finished = running()
    if finished:
        final = evaluate(step)
        for i in finished:
            checkpoint.save(members[i].manager, step, program.member_state(state, i))
            members[i].result.final_eval, members[i].result.status = final[i], "completed"
            members[i].result.step = step
        progress.message("done: top-1 error " + ", ".join(f"{final[i]['top1_error']:.4f}" for i in finished))
    for member in members:
        member.result.compilation_cache = cache_counts()
        _finish(member, batch_size, started)
    return [member.result for member in members]


def _transpose(pending: list[dict[str, jax.Array]]) -> dict[str, list[jax.Array]]:
    """Per-step metric dicts as one list per metric."""
    return {key: [metrics[key] for metrics in pending] for key in pending[0]}


def _peak_flops(mesh: jax.sharding.Mesh, compute_dtype: str) -> float | None:
    """One device's peak FLOP/s in the compute dtype (a CPU's is measured once and cached), None if unknown."""
    try:
        return peak_flops_per_second(mesh.devices.flat[0], compute_dtype)
    except ValueError:
        return None


def _log_train(member: Member, step: int, metrics: dict[str, float], speed: float, peak: float | None) -> None:
    """Log one member's training metrics and throughput."""
    devices = member.result.num_devices
    mfu = model_flops_utilization(member.plan.flops_per_example, speed, devices, peak) if peak else None
    member.trackers.log(step, {
        "kind": "train", "examples_seen": step * member.plan.batch_size, "train_loss": metrics["loss"],
        "train_top1_error": metrics["top1_error"], "grad_norm": metrics["grad_norm"],
        "lr": float(member.rates[step - 1]), "examples_per_second": speed, "mfu": mfu,
    })


def _mark_diverged(member: Member, step: int) -> None:
    """Record that the member's loss or gradients became non-finite at `step`; its checkpoints stay as they are."""
    member.result.status, member.result.step = "diverged", step
    member.manager.wait_until_finished()
    good = member.manager.latest_step()
    member.result.error = (
        f"loss or gradient norm non-finite at step {step} (last good checkpoint: "
        f"{'none' if good is None else f'step {good}'}); lower optim.lr, set optim.grad_clip_norm, "
        "or use train.compute_dtype='float32'"
    )


def _finish(member: Member, batch_size: int, started: float) -> None:
    """Close a member's checkpoints and trackers and write its result (process 0)."""
    member.manager.wait_until_finished()
    member.manager.close()
    member.trackers.close()
    if not _writes_records():
        return
    lines = read_metrics(member.workdir)
    evals = [line for line in lines if line["kind"] == "eval"]
    windows = [line for line in lines if line["kind"] == "train"]
    result = member.result
    if windows:
        steady = windows[1:] or windows
        result.examples_per_second = float(np.median([line["examples_per_second"] for line in steady]))
        mfus = [line["mfu"] for line in steady if line.get("mfu") is not None]
        result.mfu = float(np.median(mfus)) if mfus else None
    result.best_eval = min(evals, key=lambda line: line["top1_error"], default=None)
    result.examples_seen = result.step * batch_size
    result.compute = result.flops_per_example * result.examples_seen
    result.wall_seconds = time.monotonic() - started
    write_result(member.workdir, result)


def _restore(members: list[Member], program: Program) -> tuple[int, list[TrainState]]:
    """The common step to resume from and every member's state there, laid out on the mesh.

    Each run resumes from its newest readable checkpoint; a new cooldown branch starts from its trunk's
    checkpoint at the branch point; a pack resumes where its least advanced run stands.
    """
    newest = []
    for member in members:
        member.manager = checkpoint.checkpoint_manager(
            member.workdir, member.config.train.keep_checkpoints, member.keep_steps
        )
        newest.append(checkpoint.restore_newest(member.manager, program.abstract_state))
    starts = [found[0] if found else (member.plan.branch_step or 0) for member, found in zip(members, newest)]
    start = min(starts)
    restored = []
    for member, found, own in zip(members, newest, starts):
        if start == 0:
            restored.append(program.initial_state(np.int32(member.config.seed)))
        elif found and found[0] == start:
            restored.append(found[1])
        elif start in member.manager.all_steps():
            restored.append(checkpoint.restore(member.manager, start, program.abstract_state))
        elif member.plan.branch_step == start:
            trunk = member.workdir.parent / member.config.train.branch_from
            with checkpoint.checkpoint_manager(trunk, member.config.train.keep_checkpoints) as trunk_manager:
                restored.append(checkpoint.restore(trunk_manager, start, program.abstract_state))
        else:
            raise CheckpointError(
                f"{member.workdir} has checkpoints {member.manager.all_steps()} but its pack resumes at step {start} "
                f"(this run reached {own}); train it alone or delete its checkpoints"
            )
    for member in members:
        member.result.step = start
    return start, restored


def _metric_names(eval_set: str, metrics: dict[str, float]) -> dict[str, float]:
    """Metric names in records: eval_loss, top1_error, top5_error for the evaluation split; minival_loss and
    minival_error for the minival; NAME_loss, NAME_top1_error, NAME_top5_error for an extra evaluation set."""
    if eval_set == "eval":
        return metrics
    if eval_set == "minival":
        return {"minival_loss": metrics["eval_loss"], "minival_error": metrics["top1_error"]}
    prefix = eval_set.replace("/", "_").replace(":", "_")
    return {f"{prefix}_{key.removeprefix('eval_')}": value for key, value in metrics.items()}


def _evaluate(eval_step, state, examples: EvalSet, batch_size: int, mesh, norms: Norm) -> list[dict[str, float]]:
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
