"""Training end to end: `train_and_evaluate(config, workdir)` for one run, `train_packed` for several.

Phases: plan every run (config checked against the dataset and devices before anything compiles); load
each run's nested training subset and evaluation sets into host memory; build the program (model,
optimizer, train and eval steps) laid out on the mesh; restore the latest checkpoints; compile one sharded
step, vmapped over the runs of a pack (a single run is a pack of one); loop with periodic logging,
evaluation and checkpoints; write each run's result (`scaling.workdir.recorder`).

Across processes (`jax.distributed`), every process runs this same code on its share of each batch;
all of them write checkpoints (orbax), only process 0 writes config, metrics and results. SIGTERM
checkpoints and stops (`preempted`); a non-finite loss or gradient stops a run (`diverged`) before any
checkpoint of the bad state is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from scaling.errors import CheckpointError, ConfigError, DataError, RecordError
from scaling.plan import RunPlan, plan_run
from scaling.program import sharding
from scaling.program.build import Program, build_program
from scaling.program.evaluation import evaluate
from scaling.program.packing import check_packable
from scaling.program.steps import Norm, StepInputs, TrainState
from scaling.runtime.compile_cache import persistent_compilation_cache
from scaling.runtime.devices import mfu_peak, model_flops_utilization
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
            pack = Pack.open(runs)
            step = _loop(pack, preemption)
            pack.complete(step)
            for run in runs:
                run.finish(cache_counts())
    except BaseException as error:
        for workdir, result, start in zip(workdirs, results, since):
            record_failure(workdir, result, start, error)
        raise


def _earlier_result(workdir: Path) -> dict[str, Any] | None:
    """The result.json of the workdir's earlier attempts; None (with a warning) when it is damaged."""
    try:
        return read_result(workdir)
    except RecordError as error:
        print(f"warning: {error}; it is replaced, and attempts and wall time count from this one", file=sys.stderr)
        return None


def _loop(pack: Pack, preemption: PreemptionWatch) -> int:
    """Train from the pack's start step until its end, a preemption, or every run's divergence; the step it
    stopped at. The batch of step s is a pure function of (data.seed, s), so resuming is exact."""
    settings, num_steps = pack.runs[0].config.train, pack.num_steps
    step = pack.start_step
    inputs = pack.first_inputs
    window = MetricWindow(step)
    while step < num_steps and pack.running():
        pack.state, metrics = pack.compiled_step(pack.state, inputs)
        window.add(metrics)
        step += 1
        if step < num_steps:
            inputs = pack.inputs(step)  # assembled while the device runs the step
        preempted = preemption.requested(step)
        saving = pack.due_checkpoints(step, preempted)
        logging = step % settings.log_every_steps == 0 or step == num_steps
        if logging or saving:
            pack.stop_diverged(window)
        if logging:
            pack.log_train(step, window)
            window = MetricWindow(step)
        if settings.eval_every_steps and step % settings.eval_every_steps == 0 and step < num_steps and pack.running():
            pack.evaluate(step)
        pack.save(step, saving)
        if preempted and step < num_steps:
            pack.preempt(step)
    return step


class MetricWindow:
    """The train step's metrics since the last log line, fetched from the devices once when needed."""

    def __init__(self, step: int):
        self.first_step, self.started = step + 1, time.monotonic()
        self.pending: list[dict[str, jax.Array]] = []
        self._host: dict[str, np.ndarray] | None = None

    def add(self, metrics: dict[str, jax.Array]) -> None:
        self.pending.append(metrics)
        self._host = None

    def values(self) -> dict[str, np.ndarray]:
        """Each metric as [steps, members]."""
        if self._host is None:
            stacked = {key: [metrics[key] for metrics in self.pending] for key in self.pending[0]}
            self._host = {key: np.stack(values) for key, values in sharding.host_value(stacked).items()}
        return self._host

    def examples_per_second(self, batch_size: int) -> float:
        """Training throughput of one member over the window."""
        return len(self.pending) * batch_size / (time.monotonic() - self.started)


@dataclasses.dataclass
class Pack:
    """The runs trained together: their recorders and data, the program, the packed state and where it stands."""

    runs: list[RunRecorder]
    program: Program
    eval_sets: dict[str, EvalSet]
    streams: list[Iterator[tuple[np.ndarray, np.ndarray]]]
    norms: Norm  # stacked over the members, on the devices
    rates: np.ndarray  # [members, steps]: each member's learning rate of every step
    seeds: np.ndarray  # [members]: each member's data seed
    state: TrainState
    start_step: int
    compiled_step: Any = None
    first_inputs: StepInputs | None = None  # of the start step: compiled on, then trained on
    peak: float | None = None  # one device's MFU reference peak FLOP/s (whatever the compute dtype), None if unknown
    progress: ProgressLine | None = None

    @classmethod
    def open(cls, runs: list[RunRecorder]) -> Pack:
        """Each run's data, the program on the mesh, the state restored or initialised, and the step compiled."""
        lead = runs[0]
        data = [open_run_data(run.config, run.plan.builder, run.plan.facts, run.plan.selection,
                              jax.process_index(), jax.process_count()) for run in runs]
        program = build_program(lead.config, lead.plan.model)
        start_step, states = _restore(runs, program)
        norms = [member.norm for member in data]
        pack = cls(
            runs=runs, program=program, eval_sets=data[0].eval_sets,
            streams=[member.train.iterate(start_step) for member in data],
            norms=jax.device_put(jax.tree.map(lambda *leaves: np.stack(leaves), *norms),
                                 sharding.replicated(program.mesh)),
            rates=np.stack([run.plan.learning_rates for run in runs]),
            seeds=np.array([run.config.data.seed for run in runs], np.int32),
            state=program.stack(*states), start_step=start_step,
            peak=_peak_flops(program.mesh),
            progress=ProgressLine(lead.plan.num_steps, start_step, silent=not writes_records()),
        )
        pack.first_inputs = pack.inputs(start_step)
        pack.compiled_step = program.train_step.lower(pack.state, pack.first_inputs).compile()
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

    def inputs(self, step: int) -> StepInputs:
        """Every member's batch of `step`, learning rate and augmentation seed (data seed, step)."""
        images, labels = zip(*(next(stream) for stream in self.streams))
        return StepInputs.place(self.program.mesh, np.stack(images), np.stack(labels), self.norms,
                                self.rates[:, min(step, self.num_steps - 1)],
                                np.stack([self.seeds, np.full_like(self.seeds, step)], 1))

    def due_checkpoints(self, step: int, preempted: bool) -> list[int]:
        """The running members to checkpoint after `step`: all on preemption, on schedule, or at a kept step."""
        every = self.runs[0].config.train.checkpoint_every_steps
        return [i for i in self.running() if preempted or step % every == 0 or step in self.runs[i].plan.kept_steps]

    def stop_diverged(self, window: MetricWindow) -> None:
        """Stop every running member whose loss or gradient norm was non-finite in `window`."""
        values = window.values()
        bad = ~(np.isfinite(values["loss"]) & np.isfinite(values["grad_norm"]))
        for i in self.running():
            if bad[:, i].any():
                self.runs[i].diverged(window.first_step + int(np.argmax(bad[:, i])))

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
        metrics = evaluate(self.program.eval_step, self.state, self.eval_sets,
                           self.runs[0].config.train.eval_batch_size, self.program.mesh, self.norms)
        for i in running:
            self.runs[i].log_eval(step, metrics[i])
        errors = ", ".join(f"{metrics[i]['top1_error']:.4f}" for i in running)
        self.progress.message(f"{'done' if step == self.num_steps else f'eval at step {step}'}: top-1 error {errors}")
        return metrics

    def save(self, step: int, members: list[int]) -> None:
        """Checkpoint the states of the given members that still train (never a diverged state) at `step`."""
        for i in members:
            if self.runs[i].running:
                self.runs[i].save(step, self.program.member_state(self.state, i))

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
    newest = [checkpoint.restore_newest(run.manager, program.abstract_state) for run in runs]
    starts = [found[0] if found else (run.plan.branch_step or 0) for run, found in zip(runs, newest)]
    start = min(starts)
    restored = []
    for run, found, own in zip(runs, newest, starts):
        if start == 0:
            restored.append(program.initial_state(np.int32(run.config.seed)))
        elif found and found[0] == start:
            restored.append(found[1])
        elif start in run.manager.all_steps():
            restored.append(checkpoint.restore(run.manager, start, program.abstract_state))
        elif run.plan.branch_step == start:
            trunk = run.workdir.parent / run.config.train.branch_from
            with checkpoint.checkpoint_manager(trunk, run.config.train.keep_checkpoints) as trunk_manager:
                restored.append(checkpoint.restore(trunk_manager, start, program.abstract_state))
        else:
            raise CheckpointError(
                f"{run.workdir} has checkpoints {run.manager.all_steps()} but its pack resumes at step {start} "
                f"(this run reached {own}); train it alone or delete its checkpoints"
            )
    return start, restored
