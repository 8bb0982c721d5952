"""Training end to end: `train_and_evaluate(config, workdir)` for one run, `train_packed` for several.

Phases: plan every run (config checked against the dataset and devices before anything compiles); load
each run's nested training subset and evaluation sets into host memory; build the program (model,
optimizer, train and eval steps) laid out on the mesh; restore the latest checkpoints; compile one sharded
step, vmapped over the runs of a pack (a single run is a pack of one), and its evaluation with it; loop
with periodic logging, evaluation and checkpoints; write each run's result (`scaling.workdir.recorder`).

Across processes (`jax.distributed`), every process runs this same code on its share of each batch;
all of them write checkpoints (orbax), only process 0 writes config, metrics and results. SIGTERM
checkpoints and stops (`preempted`); a non-finite loss or gradient stops a run (`diverged`) before any
checkpoint of the bad state is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from analysis.table.contract import FINAL_STATUSES, Status
from scaling.config.loading import to_json_dict
from scaling.data.pipeline import EvalSet, open_run_data
from scaling.data.prefetch import Prefetcher
from scaling.errors import CheckpointError, ConfigError, DataError, RecordError
from scaling.plan import RunPlan, plan_run
from scaling.program import sharding
from scaling.program.build import Program, build_program
from scaling.program.evaluation import Evaluator
from scaling.program.packing import check_packable
from scaling.program.steps import Norm, StepInputs, TrainState
from scaling.runtime.compile_cache import persistent_compilation_cache
from scaling.runtime.devices import mfu_peak, model_flops_utilization
from scaling.runtime.dispatch import DispatchThrottle
from scaling.runtime.preemption import PreemptionWatch
from scaling.runtime.progress import ProgressLine
from scaling.workdir import checkpoint
from scaling.workdir.recorder import RunRecorder, background_errors_to, record_failure, writes_records
from scaling.workdir.records import RESULT_FIELDS, RunResult, check_config, claim_workdir, read_result, write_config
from scaling.workdir.tracking import check_wandb_credentials


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> RunResult:
    """Train and evaluate `config` in `workdir`, resuming from its latest checkpoint; record the outcome.

    A bad config fails before anything is decoded or compiled (recorded only in a fresh workdir, so a
    typo never overwrites an earlier run's result); any later failure is recorded as failed and re-raised.
    """
    return train_packed([config], [workdir])[0]


def train_packed(configs: list[ml_collections.ConfigDict], workdirs: list[str | Path]) -> list[RunResult]:
    """Train runs that share shapes and step counts together in one vmapped program.

    Each run keeps its own workdir, checkpoints, metrics and result, exactly as if trained alone
    (seeds, learning rates and subset sizes may differ; see scaling.program.packing). A workdir has one
    writer at a time (its lock, held by process 0); a run already completed or diverged is not trained again.
    """
    started = time.monotonic()
    workdirs = [Path(workdir) for workdir in workdirs]
    with contextlib.ExitStack() as locks:
        for workdir in workdirs:
            locks.enter_context(claim_workdir(workdir, lock=writes_records()))
        earlier = [_earlier_result(workdir) for workdir in workdirs]
        plans, results = [], []
        for config, workdir, before in zip(configs, workdirs, earlier, strict=True):
            results.append(RunResult(status=Status.RUNNING, family=config.model.name, pack_size=len(configs),
                                     attempts=before.get("attempts", 1) + 1 if before else 1))
            try:
                check_wandb_credentials(config.wandb.mode)  # before any data is read
                _check_clock_checkpoints(config)
                plans.append(plan_run(config))
            except (ConfigError, DataError) as error:
                if before is None:
                    record_failure(workdir, results[-1], started, error)
                raise
        check_packable(configs, [(plan.num_steps, plan.branch_step) for plan in plans])
        for config, workdir in zip(configs, workdirs):  # every process checks: all stop on a different config
            (write_config if writes_records() else check_config)(workdir, to_json_dict(config))
        final = [i for i, before in enumerate(earlier) if before and before["status"] in FINAL_STATUSES]
        for i in final:
            print(f"{workdirs[i]}: already {earlier[i]['status']} at step {earlier[i].get('step')} "
                  "(result.json); nothing to do", file=sys.stderr)
            results[i] = RunResult(**{key: value for key, value in earlier[i].items() if key in RESULT_FIELDS})
        members = [i for i in range(len(configs)) if i not in final]
        if members:
            since = [started - (earlier[i] or {}).get("wall_seconds", 0.0) for i in members]
            _train([configs[i] for i in members], [workdirs[i] for i in members], [plans[i] for i in members],
                   [results[i] for i in members], since)
    return results


def _train(configs: list[ml_collections.ConfigDict], workdirs: list[Path], plans: list[RunPlan],
           results: list[RunResult], since: list[float]) -> None:
    """Train the pack, recording each run's outcome in its result (`since`: each run's start, its earlier
    attempts' wall time included)."""
    try:
        with persistent_compilation_cache(configs[0].train.compilation_cache_dir) as cache_counts, \
                PreemptionWatch() as preemption, background_errors_to(workdirs[0]):
            runs = [RunRecorder(*member) for member in zip(configs, workdirs, plans, results, since)]
            with contextlib.closing(Pack.open(runs)) as pack:
                step = _loop(pack, preemption)
                pack.complete(step)
            for run in runs:
                run.finish(cache_counts())
    except BaseException as error:
        for workdir, result, start in zip(workdirs, results, since):
            record_failure(workdir, result, start, error)
        raise


def _check_clock_checkpoints(config: ml_collections.ConfigDict) -> None:
    """Wall-clock checkpoints need one process: the processes' clocks would disagree on when to save."""
    if config.train.checkpoint_every_minutes is not None and jax.process_count() > 1:
        raise ConfigError(
            f"train.checkpoint_every_minutes={config.train.checkpoint_every_minutes} needs a single process, but "
            f"this run has {jax.process_count()}: use train.checkpoint_every_steps instead"
        )


def _earlier_result(workdir: Path) -> dict[str, Any] | None:
    """The result.json of the workdir's earlier attempts; None (with a warning) when it is damaged."""
    try:
        return read_result(workdir)
    except RecordError as error:
        print(f"warning: {error}; it is replaced, and attempts and wall time count from this one", file=sys.stderr)
        return None


def _loop(pack: Pack, preemption: PreemptionWatch) -> int:
    """Train from the pack's start step until its end, a preemption, or every run's divergence; the step it
    stopped at. The batch of step s is a pure function of (data.seed, s), so resuming is exact; the next batches
    are built and placed on the devices ahead of use (`Pack.batches`).

    A window's metrics are logged one window late (fetched once its steps have run, while the next window's
    steps are queued), so a log line does not empty the queue; a checkpoint or the last step needs the current
    window's metrics (no checkpoint of a diverged state), and so does an evaluation (its lines follow the step's
    train line), so they wait for them."""
    settings, num_steps = pack.runs[0].config.train, pack.num_steps
    step = pack.start_step
    inputs = pack.first_inputs
    window, previous, ready = MetricWindow(step), None, time.monotonic()
    pack.checkpointed_at = checkpoint_clock()
    throttle = DispatchThrottle()
    while step < num_steps and pack.running():
        pack.state, metrics = pack.compiled_step(pack.state, inputs)
        throttle.dispatched(metrics)
        window.add(metrics)
        step += 1
        if step < num_steps:
            inputs = next(pack.batches)
        preempted = preemption.requested(step)
        saving = pack.due_checkpoints(step, preempted)
        logging = step % settings.log_every_steps == 0 or step == num_steps
        evaluating = bool(settings.eval_every_steps) and step % settings.eval_every_steps == 0 and step < num_steps
        now = bool(saving) or step == num_steps or evaluating  # an evaluation's lines follow the step's train line
        if previous and (logging or now):
            ready, previous = pack.report(previous, ready), None
        if now:
            pack.stop_diverged(window)
        if logging:
            if now:
                ready = pack.report(window, ready)
            else:
                window.fetch_later()
                previous = window
            window = MetricWindow(step)
        if evaluating and pack.running():
            pack.evaluate(step)
        pack.save(step, saving)
        if preempted and step < num_steps:
            pack.preempt(step)
    return step


def checkpoint_clock() -> float:
    """Seconds on the clock of wall-time checkpoints (train.checkpoint_every_minutes)."""
    return time.monotonic()


class MetricWindow:
    """The train step's metrics of the steps after `step` until a log line, fetched from the devices in one go."""

    def __init__(self, step: int):
        self.first_step = step + 1
        self.pending: list[dict[str, jax.Array]] = []
        self.seconds = 0.0  # from the end of the previous window's steps to the end of this one's (`finish`)
        self._host: dict[str, np.ndarray] | None = None

    @property
    def last_step(self) -> int:
        return self.first_step + len(self.pending) - 1

    def add(self, metrics: dict[str, jax.Array]) -> None:
        self.pending.append(metrics)
        self._host = None

    def fetch_later(self) -> None:
        """Start copying the metrics to the host, without waiting for their steps to run."""
        for leaf in jax.tree.leaves(self.pending):
            leaf.copy_to_host_async()

    def finish(self, since: float) -> float:
        """Wait for the window's last step to run; the time it ended (`since`: when the window began)."""
        jax.block_until_ready(self.pending[-1])
        ended = time.monotonic()
        self.seconds = ended - since
        return ended

    def values(self) -> dict[str, np.ndarray]:
        """Each metric as [steps, members]."""
        if self._host is None:
            stacked = {key: [metrics[key] for metrics in self.pending] for key in self.pending[0]}
            self._host = {key: np.stack(values) for key, values in sharding.host_value(stacked).items()}
        return self._host

    def examples_per_second(self, batch_size: int) -> float:
        """Training throughput of one member over the window (once `finish`ed)."""
        return len(self.pending) * batch_size / self.seconds


@dataclasses.dataclass
class Pack:
    """The runs trained together: their recorders and data, the program, the packed state and where it stands."""

    runs: list[RunRecorder]
    program: Program
    eval_sets: dict[str, EvalSet]
    norms: Norm  # stacked over the members, on the devices
    batches: Prefetcher[StepInputs]  # the step inputs of the start step onwards, built ahead of use
    state: TrainState
    start_step: int
    compiled_step: Any = None
    copy_member: Any = None  # (packed state, np.int32 index) -> a copy of one run's state; compiled with the step
    evaluator: Evaluator | None = None  # compiled with the train step
    first_inputs: StepInputs | None = None  # of the start step: compiled on, then trained on
    peak: float | None = None  # one device's MFU reference peak FLOP/s (whatever the compute dtype), None if unknown
    checkpointed_at: float = 0.0  # `checkpoint_clock` at the last checkpoint (or the start of the loop)
    progress: ProgressLine | None = None

    @classmethod
    def open(cls, runs: list[RunRecorder]) -> Pack:
        """Each run's data, the program on the mesh, the state restored or initialised, and the step compiled."""
        lead = runs[0]
        data = [open_run_data(run.config, run.plan.builder, run.plan.facts, run.plan.selection,
                              jax.process_index(), jax.process_count()) for run in runs]
        program = build_program(lead.config, lead.plan.model)
        start_step, states = _restore(runs, program)
        norms = jax.device_put(jax.tree.map(lambda *leaves: np.stack(leaves), *[member.norm for member in data]),
                               sharding.replicated(program.mesh))
        batches = Prefetcher(step_inputs(program.mesh, [member.train.iterate(start_step) for member in data], norms,
                                         np.stack([run.plan.learning_rates for run in runs]),
                                         np.array([run.config.data.seed for run in runs], np.int32), start_step))
        pack = cls(
            runs=runs, program=program, eval_sets=data[0].eval_sets, norms=norms, batches=batches,
            state=program.stack(*states), start_step=start_step,
            peak=_peak_flops(program.mesh),
            progress=ProgressLine(lead.plan.num_steps, start_step, silent=not writes_records()),
        )
        try:
            pack.first_inputs = next(batches)
            pack.compiled_step = program.train_step.lower(pack.state, pack.first_inputs).compile()
            pack.copy_member = program.member_state.lower(pack.state, np.int32(0)).compile()
            pack.evaluator = Evaluator.compile(program.eval_step, pack.state, program.mesh,
                                               lead.config.train.eval_batch_size, pack.eval_sets["eval"], norms)
        except BaseException:
            batches.close()
            raise
        for run, member in zip(runs, data):
            run.result.eval_examples = len(member.eval_sets["eval"].targets)
            run.result.device_kind, run.result.num_devices = jax.devices()[0].device_kind, program.mesh.devices.size
            run.result.compute_dtype = program.compute_dtype
            run.result.step = start_step
            run.start(start_step)
        pack.progress.message(pack.describe())
        return pack

    @property
    def num_steps(self) -> int:
        return self.runs[0].plan.num_steps

    def describe(self) -> str:
        """The opening line: model, size, data, steps and where the pack resumes."""
        plan, config = self.runs[0].plan, self.runs[0].config
        return (f"{self.runs[0].result.model}: {plan.params:,} params, "
                f"{plan.flops_per_example:.3g} train FLOPs/example, "
                f"{', '.join(str(run.plan.train_examples) for run in self.runs)} examples of {config.data.name} "
                f"at {plan.facts.image_shape[0]} px, "
                f"{plan.num_steps} steps of {plan.batch_size}"
                + (f" for {len(self.runs)} packed runs" if len(self.runs) > 1 else "")
                + (f", resuming at step {self.start_step}" if self.start_step else ""))

    def running(self) -> list[int]:
        """Indices of the runs still training."""
        return [i for i, run in enumerate(self.runs) if run.running]

    def close(self) -> None:
        """Stop building batches."""
        self.batches.close()

    def due_checkpoints(self, step: int, preempted: bool) -> list[int]:
        """The running members to checkpoint after `step`: all on preemption, on schedule (every so many steps or
        minutes), or at a kept step."""
        settings = self.runs[0].config.train
        timed = False
        if settings.checkpoint_every_minutes is not None:
            now = checkpoint_clock()
            timed = now - self.checkpointed_at >= 60 * settings.checkpoint_every_minutes
        scheduled = preempted or timed or step % settings.checkpoint_every_steps == 0
        due = [i for i in self.running() if scheduled or step in self.runs[i].plan.kept_steps]
        if due and settings.checkpoint_every_minutes is not None:
            self.checkpointed_at = now
        return due

    def stop_diverged(self, window: MetricWindow) -> None:
        """Stop every running member whose loss or gradient norm was non-finite in `window`."""
        values = window.values()
        bad = ~(np.isfinite(values["loss"]) & np.isfinite(values["grad_norm"]))
        for i in self.running():
            if bad[:, i].any():
                self.runs[i].diverged(window.first_step + int(np.argmax(bad[:, i])))

    def report(self, window: MetricWindow, since: float) -> float:
        """Wait for `window`'s steps (begun at `since`), stop the members that diverged in it and log it; when it
        ended."""
        ended = window.finish(since)
        self.stop_diverged(window)
        self.log_train(window.last_step, window)
        return ended

    def log_train(self, step: int, window: MetricWindow) -> None:
        """Each running member's mean metrics over `window`, its throughput and MFU; the progress line."""
        means = {key: values.mean(0) for key, values in window.values().items()}
        speed = window.examples_per_second(self.runs[0].plan.batch_size)
        mfus = {i: self._mfu(i, speed) for i in self.running()}
        for i, mfu in mfus.items():
            self.runs[i].log_train(step, {key: float(value[i]) for key, value in means.items()}, speed, mfu)
        if mfus:
            total = None if self.peak is None else sum(mfus.values())
            self.progress.update(step, float(np.mean(means["loss"][list(mfus)])), speed * len(self.runs),
                                 f"MFU {total:.1%}" if total is not None else "")

    def evaluate(self, step: int) -> list[dict[str, float]]:
        """Evaluate every member once on every evaluation set; log it for the running ones."""
        running = self.running()
        metrics = self.evaluator(self.state, self.eval_sets, self.norms)
        for i in running:
            self.runs[i].log_eval(step, metrics[i])
        errors = ", ".join(f"{metrics[i]['top1_error']:.4f}" for i in running)
        self.progress.message(f"{'done' if step == self.num_steps else f'eval at step {step}'}: top-1 error {errors}")
        return metrics

    def save(self, step: int, members: list[int]) -> None:
        """Checkpoint the states of the given members that still train (never a diverged state) at `step`: each
        member's state is copied on the devices, and the copy saved in the background while the steps go on."""
        for i in members:
            if self.runs[i].running:
                self.runs[i].save(step, self.program.saved(self.copy_member(self.state, np.int32(i))))

    def preempt(self, step: int) -> None:
        """Record every running member as preempted at `step` (their checkpoints are saved)."""
        for i in self.running():
            self.runs[i].preempted(step)
        self.progress.message(f"preempted: checkpointed step {step}; run the same command again to resume")

    def complete(self, step: int) -> None:
        """Final evaluation and checkpoint of the members that trained to the end."""
        finished = self.running()
        if not finished:
            return
        final = self.evaluate(step)
        self.save(step, finished)
        for i in finished:
            self.runs[i].completed(step, final[i])

    def _mfu(self, member: int, speed: float) -> float | None:
        if self.peak is None:
            return None
        return model_flops_utilization(self.runs[member].plan.flops_per_example, speed,
                                       self.program.mesh.devices.size, self.peak)


def step_inputs(mesh: jax.sharding.Mesh, streams: list[Iterator[tuple[np.ndarray, np.ndarray]]], norms: Norm,
                rates: np.ndarray, seeds: np.ndarray, start_step: int) -> Iterator[StepInputs]:
    """The step inputs of `start_step` onwards on `mesh`: every member's batch from its stream, learning rate (of
    `rates`, [members, steps], the last one after the end) and augmentation seed (data seed `seeds`, step)."""
    for step in itertools.count(start_step):
        images, labels = zip(*(next(stream) for stream in streams))
        yield StepInputs.place(mesh, _stacked(images), _stacked(labels), norms, rates[:, min(step, rates.shape[1] - 1)],
                               np.stack([seeds, np.full_like(seeds, step)], 1))


def _stacked(arrays: tuple[np.ndarray, ...]) -> np.ndarray:
    """The members' arrays stacked on a new leading axis; a view of a pack of one (no copy)."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def _peak_flops(mesh: jax.sharding.Mesh) -> float | None:
    """One device's MFU reference peak FLOP/s (`mfu_peak`; a CPU's is measured once and cached), None if unknown."""
    try:
        return mfu_peak(mesh.devices.flat[0])
    except ValueError:
        return None


def _restore(runs: list[RunRecorder], program: Program) -> tuple[int, list[TrainState]]:
    """The common step to resume from and every member's state there, laid out on the mesh.

    Each run resumes from its newest readable checkpoint; a new cooldown branch starts from its trunk's
    checkpoint at the branch point; a pack resumes where its least advanced run stands.
    """
    saved = program.saved_abstract
    newest = [checkpoint.restore_newest(run.manager, saved) for run in runs]
    starts = [found[0] if found else (run.plan.branch_step or 0) for run, found in zip(runs, newest)]
    start = min(starts)
    restored = []
    for run, found, own in zip(runs, newest, starts):
        if start == 0:
            restored.append(program.initial_state(np.int32(run.config.seed)))
        elif found and found[0] == start:
            restored.append(program.from_saved(found[1]))
        elif start in run.manager.all_steps():
            restored.append(program.from_saved(checkpoint.restore(run.manager, start, saved)))
        elif run.plan.branch_step == start:
            trunk = run.workdir.parent / run.config.train.branch_from
            with checkpoint.checkpoint_manager(trunk, run.config.train.keep_checkpoints) as trunk_manager:
                restored.append(program.from_saved(checkpoint.restore(trunk_manager, start, saved)))
        else:
            raise CheckpointError(
                f"{run.workdir} has checkpoints {run.manager.all_steps()} but its pack resumes at step {start} "
                f"(this run reached {own}); train it alone or delete its checkpoints"
            )
    return start, restored
