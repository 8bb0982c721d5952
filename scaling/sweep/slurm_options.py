"""What the Slurm launcher asks of the cluster: resources, account, QoS, requeues and any other sbatch parameter.

Each option comes from the command line (`--account A`), else from the sweep file's SLURM dict
(`SLURM = {"account": "A", "params": {"mail-type": "END"}, "env": {"XLA_FLAGS": "..."}}`), else its default;
all are checked before anything is submitted. `SlurmOptions.executor_parameters` maps them onto submitit's
`SlurmExecutor` (which writes them as `#SBATCH` lines).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from scaling.errors import ConfigError
from scaling.schema import check_value
from scaling.sweep.state import parse_env


class Option(NamedTuple):
    """A Slurm option's default, its rule (scaling.schema) and its --help text."""

    default: Any
    rule: str
    help: str


OPTIONS: dict[str, Option] = {
    "account": Option(None, "str|None", "account charged for the jobs (sbatch --account)"),
    "qos": Option(None, "str|None", "quality of service of the jobs (sbatch --qos)"),
    "partition": Option(None, "str|None", "partition to submit to (default: the cluster's default partition)"),
    "mem": Option(None, "str|None", "memory per node, e.g. 64G or 500M, 0 for all of it (sbatch --mem; default: "
                  "the partition's)"),
    "constraint": Option(None, "str|None", "node features the jobs need, e.g. 'a100|h100' (sbatch --constraint)"),
    "cpus_per_task": Option(4, "int", "CPU cores per task (default 4)"),
    "gpus_per_node": Option(0, "count", "GPUs per node (default 0: CPU jobs); a job given GPUs fails its runs "
                            "rather than train on the CPU"),
    "nodes": Option(1, "int", "nodes per run (default 1); above 1, one run spans them all as one jax.distributed "
                    "program, one task per GPU, joined from Slurm's environment"),
    "tasks_per_node": Option(None, "int|None", "processes per node of a run (default: 1 on one node, one per GPU "
                             "across several); each gets --cpus-per-task cores and an equal share of the node's GPUs"),
    "array_parallelism": Option(64, "int", "tasks of a job array running at once (default 64)"),
    "timeout_min": Option(60, "int", "time limit per job in minutes (default 60); a job that reaches it "
                          "checkpoints and is requeued"),
    "max_requeues": Option(3, "count", "times a job that reaches its time limit is requeued to resume from its "
                           "checkpoints (default 3); requeues after preemption are not counted"),
}
# sbatch parameters the launcher sets itself: --slurm-param may not give them.
OWNED = {"array": "the launcher submits one job array per wave", "job-name": "jobs are named after the sweep",
         "output": "submitit writes the logs", "error": "submitit writes the logs", "open-mode": "submitit's",
         "signal": "submitit's preemption warning", "dependency": "--detach chains the waves itself",
         "kill-on-invalid-dep": "--detach sets it (see `scaling sweep run --help`)", "time": "use --timeout-min",
         "ntasks": "use --nodes and --tasks-per-node", "gpus-per-task": "use --gpus-per-node and --tasks-per-node",
         "ntasks-per-node": "use --tasks-per-node", **{name.replace("_", "-"): f"use --{name.replace('_', '-')}"
                                                        for name in OPTIONS}}
MEMORY = re.compile(r"[0-9]+[KMGTkmgt]?")
PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
ParamValue = str | bool


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """Everything the Slurm launcher submits with (see OPTIONS); `params` are further sbatch parameters (True for
    a flag without value), `env` variables set in every job."""

    account: str | None = None
    qos: str | None = None
    partition: str | None = None
    mem: str | None = None
    constraint: str | None = None
    cpus_per_task: int = 4
    gpus_per_node: int = 0
    nodes: int = 1
    tasks_per_node: int | None = None
    array_parallelism: int = 64
    timeout_min: int = 60
    max_requeues: int = 3
    params: Mapping[str, ParamValue] = dataclasses.field(default_factory=dict)
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, option in OPTIONS.items():
            check_value(f"--{name.replace('_', '-')}", getattr(self, name), option.rule)
        if self.mem is not None and not MEMORY.fullmatch(self.mem):
            raise ConfigError(f"--mem {self.mem!r} is not a Slurm memory size: give a whole number with an optional "
                              "unit K, M, G or T (e.g. 64G; no unit: megabytes; 0: all of the node's)")
        tasks = self.tasks()
        if self.gpus_per_node and self.gpus_per_node % tasks:
            raise ConfigError(f"--tasks-per-node {tasks} does not divide --gpus-per-node {self.gpus_per_node}: each "
                              "task gets an equal share of a node's GPUs; give a divisor (one task per GPU: "
                              f"--tasks-per-node {self.gpus_per_node})")

    def tasks(self) -> int:
        """Processes per node: `tasks_per_node`, else 1 on one node and one per GPU across several."""
        if self.tasks_per_node is not None:
            return self.tasks_per_node
        return max(self.gpus_per_node, 1) if self.nodes > 1 else 1

    def executor_parameters(self) -> dict[str, Any]:
        """The options as keyword arguments of submitit's `SlurmExecutor.update_parameters` (job name and setup
        aside); `max_requeues` goes to the executor itself (`max_num_timeout`)."""
        tasks = self.tasks()
        if not self.gpus_per_node:
            gpus = {}
        elif tasks == 1:
            gpus = {"gpus_per_node": self.gpus_per_node}
        else:
            gpus = {"gpus_per_task": self.gpus_per_node // tasks}
        named = {name: getattr(self, name) for name in ("account", "qos", "partition", "mem", "constraint")}
        return {
            "time": self.timeout_min, "nodes": self.nodes, "ntasks_per_node": tasks,
            "cpus_per_task": self.cpus_per_task, "array_parallelism": self.array_parallelism,
            **{name: value for name, value in named.items() if value is not None}, **gpus,
            **({"additional_parameters": dict(self.params)} if self.params else {}),
        }


def add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--launcher slurm` flags of `scaling sweep run` (each also a key of the sweep file's SLURM dict)."""
    group = parser.add_argument_group(
        "slurm launcher", "Also settable in the sweep file as SLURM = {'account': ..., 'params': {...}, "
        "'env': {...}}; a flag given here wins.")
    for name, option in OPTIONS.items():
        kind = int if option.rule.startswith(("int", "count")) else str
        group.add_argument(f"--{name.replace('_', '-')}", type=kind, help=option.help,
                           **({"metavar": "N"} if kind is int else {}))
    group.add_argument("--slurm-param", action="append", default=[], metavar="KEY[=VALUE]",
                       help="any other sbatch parameter, e.g. --slurm-param mail-type=END or --slurm-param exclusive "
                       "(repeatable; the sweep file's SLURM['params'] dict likewise)")
    group.add_argument("--detach", action="store_true",
                       help="submit every wave at once and return: cooldown branches run as a job array that "
                       "starts once all trunks of the earlier array completed (afterok; if one fails, Slurm cancels "
                       "the dependent array and `scaling sweep status` shows its runs as failed: run the same "
                       "command again to resubmit them); runs already queued are not submitted twice. Follow with "
                       "`scaling sweep status`")


def given_slurm_flags(args: argparse.Namespace) -> list[str]:
    """The Slurm flags given on the command line (for the error when the launcher is local)."""
    named = [f"--{name.replace('_', '-')}" for name in OPTIONS if getattr(args, name) is not None]
    return named + ["--slurm-param"] * bool(args.slurm_param) + ["--detach"] * args.detach


def slurm_options(args: argparse.Namespace, env: Mapping[str, str], file_options: Any, source: str) -> SlurmOptions:
    """The options of a launch: the command line's (`args`, and `env` from --env) over the sweep file's SLURM
    dict (`file_options`, from `source`) over the defaults. ConfigError naming the bad flag or key."""
    defaults = _file_options(file_options, source)
    given = {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}
    params = {**defaults.pop("params", {}), **parse_params(args.slurm_param)}
    return SlurmOptions(**{**defaults, **given, "params": params, "env": {**defaults.pop("env", {}), **env}})


def parse_params(items: list[str]) -> dict[str, ParamValue]:
    """`--slurm-param KEY=VALUE` (or KEY alone: a flag) arguments as a mapping; ConfigError for a malformed one or
    one the launcher sets itself (OWNED)."""
    params: dict[str, ParamValue] = {}
    for item in items:
        key, equals, value = item.partition("=")
        params[_param_name(key, f"--slurm-param {item!r}")] = value if equals else True
    return params


def _param_name(key: str, what: str) -> str:
    name = key.removeprefix("--").replace("_", "-")
    if not PARAM_NAME.fullmatch(name):
        raise ConfigError(f"{what} is not KEY=VALUE or KEY with KEY an sbatch parameter name (letters, digits, -), "
                          "e.g. --slurm-param mail-type=END or --slurm-param exclusive")
    if name in OWNED:
        raise ConfigError(f"{what}: the Slurm launcher sets --{name} itself ({OWNED[name]})")
    return name


def _file_options(raw: Any, source: str) -> dict[str, Any]:
    """The sweep file's SLURM dict, checked: known keys, `params` a dict of sbatch parameters, `env` of variables."""
    where = f"SLURM in {source}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a dict of Slurm options like {{'account': 'A', 'qos': 'Q'}}, got {raw!r}")
    unknown = sorted(set(raw) - {*OPTIONS, "params", "env"})
    if unknown:
        raise ConfigError(f"{where} has unknown keys {', '.join(map(repr, unknown))}; allowed: "
                          f"{', '.join([*OPTIONS, 'params', 'env'])}")
    options = {name: value for name, value in raw.items() if name in OPTIONS}
    for name, value in options.items():
        check_value(f"{where}[{name!r}]", value, OPTIONS[name].rule)
    params, env = raw.get("params", {}), raw.get("env", {})
    for key, value in (("params", params), ("env", env)):
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{where}[{key!r}] must be a dict with string keys, got {value!r}")
    options["params"] = {
        _param_name(name, f"{where}['params'][{name!r}]"): value if value is True else str(value)
        for name, value in params.items()
    }
    try:
        options["env"] = parse_env(f"{name}={value}" for name, value in env.items())
    except ConfigError as error:
        raise ConfigError(f"{where}['env']: {error}") from None
    return options
