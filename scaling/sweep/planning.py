"""Sizing every point of a sweep before anything runs: params, FLOPs per example, steps, compute."""

from __future__ import annotations

from scaling.errors import ConfigError
from scaling.plan import RunPlan, plan_run
from scaling.sweep.spec import SweepPoint


def plan_points(points: list[SweepPoint]) -> list[RunPlan]:
    """The plan of each point; a bad point fails naming its run id, before any point runs."""
    plans = []
    for point in points:
        try:
            plans.append(plan_run(point.load()))
        except ConfigError as error:
            raise ConfigError(f"sweep point {point.run_id}: {error}") from None
    return plans


def planned_work(points: list[SweepPoint], plans: list[RunPlan]) -> dict[str, float]:
    """Each point's training FLOPs still to run when it starts: a cooldown branch resumes its trunk's checkpoint,
    so only its steps after the branch point count (what the sweep's ETA weighs runs by)."""
    return {point.run_id: plan.compute * (plan.num_steps - (plan.branch_step or 0)) / plan.num_steps
            for point, plan in zip(points, plans, strict=True)}


def format_plan(points: list[SweepPoint], plans: list[RunPlan]) -> str:
    """A table of the expanded grid with params, train FLOPs per example, steps and planned compute."""
    header = f"{'run id':<48} {'params':>12} {'FLOPs/example':>14} {'examples':>9} {'steps':>7} {'compute':>10}"
    lines = [header, "-" * len(header)]
    for point, plan in zip(points, plans, strict=True):
        lines.append(
            f"{point.run_id:<48} {plan.params:>12,} {plan.flops_per_example:>14.3g} {plan.train_examples:>9} "
            f"{plan.num_steps:>7} {plan.compute:>10.3g}"
        )
    lines.append(f"{len(points)} runs, total planned compute {sum(p.compute for p in plans):.3g} FLOPs")
    return "\n".join(lines)
