"""`scaling bench suite`: one command that measures a machine's devices, section by section (matmul ceiling, bare
step of ResNet-50 and ViT-B/16 with MFU, loop against bare step, packing, data feed, multi-start fit; see
scaling.tools.bench_sections), printing one table row per figure and writing every figure to a JSON file.

A section that fails is recorded as skipped with its one-line reason and the suite goes on; the JSON is rewritten
after every section, so a machine taken away mid-run still leaves what was measured. Figures with a target in
issue 16 carry it, and where it is missed the shortfall (targets apply on GPU and TPU, not on a CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from scaling.errors import PREEMPTED_EXIT, ConfigError

SECTION_NAMES = ("matmul", "step", "loop", "pack", "feed", "fit")  # the order they run in


@dataclasses.dataclass(frozen=True)
class Target:
    """Issue 16's target of a figure on one H100/H200 (the least acceptable value, and what to aim for)."""

    least: float
    aim: float | None = None


TARGETS = {
    "step.vit.mfu": Target(0.30, aim=0.50), "step.resnet.mfu": Target(0.12),
    "loop.resnet.loop_over_bare": Target(0.97), "loop.vit.loop_over_bare": Target(0.97),
    "pack.throughput_speedup": Target(3.0),
}


def add_suite_command(commands: argparse._SubParsersAction) -> None:
    """Register `bench suite`."""
    suite = commands.add_parser(
        "suite", help="every benchmark in one run of a few minutes: a table, and every figure in a JSON file",
        description="Measures this machine's devices: the bfloat16 matmul ceiling beside the table peak; ResNet-50 "
        "and ViT-B/16 bare steps at 224 px, batch 256 (images/s, MFU, peak memory, compile time); the training "
        "loop against the bare step; 8 tiny ResNets packed against one after another; the uint8 cache's feed "
        "rate against ResNet-50's; the 4,500-start fit against a scipy loop. All on the synthetic dataset, in "
        "train.compute_dtype=auto. Prints one row per figure with issue 16's targets (GPU/TPU) and writes JSON.",
    )
    suite.add_argument("--out", required=True, metavar="FILE.json", help="where to write the results (JSON)")
    suite.add_argument("--smoke", action="store_true", help="tiny shapes (seconds on a CPU): checks, not figures")
    suite.add_argument("--sections", default=",".join(SECTION_NAMES), metavar="NAME[,NAME...]",
                       help=f"the sections to run (default all: {','.join(SECTION_NAMES)})")
    suite.add_argument("--batch", type=int, metavar="N",
                       help="global batch of the step, loop and feed sections (default 256; --smoke 16)")
    suite.set_defaults(handler=_bench_suite)


def _bench_suite(args: argparse.Namespace) -> int:
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in sections if name not in SECTION_NAMES]
    if unknown or not sections:
        raise ConfigError(f"--sections {args.sections!r}: unknown section(s) {', '.join(unknown) or 'none given'}; "
                          f"choose among {','.join(SECTION_NAMES)}")
    if args.batch is not None and args.batch < 1:
        raise ConfigError(f"--batch must be a positive number of images, got {args.batch}")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist; create it or write elsewhere")
    report = run_suite([name for name in SECTION_NAMES if name in sections], args.smoke, args.batch, out)
    print(format_table(report))
    print(f"wrote {out}")
    if report.get("stopped"):
        print(f"stopped by SIGTERM: {report['stopped']}; run the suite again for the rest", file=sys.stderr)
        return PREEMPTED_EXIT
    return 0


def run_suite(sections: list[str], smoke: bool, batch: int | None, out: Path) -> dict:
    """Run `sections` (each in turn; a failure skips it with its reason), writing the report to `out` after each."""
    import jax

    from scaling.runtime.compile_cache import persistent_compilation_cache
    from scaling.tools.bench_sections import SECTIONS, Shapes

    device = jax.devices()[0]
    shapes = Shapes.choose(smoke, device.platform, batch)
    report = _header(smoke, device)
    report["sections"] = {name: _skipped("not run: the suite stopped before it" if name in sections
                                         else "not in --sections") for name in SECTION_NAMES}
    _write(out, report)  # an unwritable --out fails here, before anything is measured
    shared: dict = {}  # what one section measures for another (the step section's images/s for the feed section)
    # A fresh compilation cache: the step section's compile times are real compiles, later sections reuse them.
    stop = threading.Event()  # SIGTERM: the running section's training stops at its next step, no section starts
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if _in_main_thread() else None
    with tempfile.TemporaryDirectory(prefix="bench-suite-xla-") as cache, persistent_compilation_cache(cache):
        for number, name in enumerate(sections, 1):
            if stop.is_set():
                report["stopped"] = f"the sections from {name} on were not run"
                for later in sections[number - 1:]:
                    report["sections"][later] = _skipped("not run: the suite was stopped by SIGTERM")
                _write(out, report)
                break
            _progress(f"[{number}/{len(sections)}] {name} ...")
            start = time.perf_counter()
            try:
                settings, figures = SECTIONS[name](shapes, shared)
            except Exception as error:  # any failure skips the section, named in one line
                report["sections"][name] = _skipped(_one_line(error))
                _progress(f"{name}: skipped: {_one_line(error)}")
            else:
                seconds = time.perf_counter() - start
                report["sections"][name] = {
                    "status": "ok", "seconds": round(seconds, 2), "settings": settings,
                    "figures": {figure.name: _record(f"{name}.{figure.name}", figure, device.platform)
                                for figure in figures},
                }
                _progress(f"{name}: ok in {seconds:.1f} s")
            _write(out, report)
    if _in_main_thread():
        signal.signal(signal.SIGTERM, previous)
    if stop.is_set() and "stopped" not in report:
        report["stopped"] = f"during the last section, {sections[-1]}"
        _write(out, report)
    return report


def _in_main_thread() -> bool:
    """Signal handlers can only be set from the main thread."""
    return threading.current_thread() is threading.main_thread()


def format_table(report: dict) -> str:
    """The machine, then one row per figure: name, value, unit, target, verdict (skipped sections: their reason)."""
    rows = [("figure", "value", "unit", "target", "verdict")]
    for name, section in report["sections"].items():
        if section["status"] != "ok":
            rows.append((name, "-", "", "", f"skipped: {section['reason']}"))
            continue
        for figure_name, figure in section["figures"].items():
            value, unit = _shown(figure["value"], figure["unit"])
            target = "" if "target" not in figure else (
                f">= {figure['target']:g}" + (f" (aim {figure['aim']:g})" if "aim" in figure else ""))
            verdict = figure.get("verdict", "") if figure["status"] == "ok" else f"skipped: {figure['reason']}"
            rows.append((f"{name}.{figure_name}", value, unit, target, verdict))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [f"{report['device_kind']} x {report['device_count']} ({report['platform']}), "
             f"jax {report['versions']['jax']}{', smoke shapes' if report['smoke'] else ''}, {report['date']}"]
    lines += ["  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                         row[3].ljust(widths[3]), row[4]]).rstrip() for row in rows]
    return "\n".join(lines)


def _header(smoke: bool, device) -> dict:
    """What was measured where: the devices, the versions, the date."""
    import flax
    import jax
    import jaxlib

    return {
        "suite": "scaling bench suite", "smoke": smoke,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device_kind": device.device_kind, "device_count": jax.device_count(), "platform": device.platform,
        "process_count": jax.process_count(),
        "versions": {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
                     "python": platform.python_version()},
    }


def _record(key: str, figure, platform_name: str) -> dict:
    """A figure as JSON: value and unit, or why it is missing; its target, verdict and shortfall where it has one."""
    record: dict = {"value": figure.value, "unit": figure.unit,
                    **({"status": "ok"} if figure.reason is None else {"status": "skipped", "reason": figure.reason})}
    target = TARGETS.get(key)
    if target is None:
        return record
    record["target"] = target.least
    if target.aim is not None:
        record["aim"] = target.aim
    if platform_name == "cpu":
        record["verdict"] = "not applicable on cpu"
    elif figure.value is None:
        record["verdict"] = "not measured"
    elif figure.value >= target.least:
        record["verdict"] = "met"
    else:
        record["verdict"], record["shortfall"] = "missed", target.least - figure.value
    return record


def _shown(value: float | None, unit: str) -> tuple[str, str]:
    if value is None:
        return "-", unit
    if unit == "bytes":
        return f"{value / 2**30:.2f}", "GiB"
    return f"{value:.4g}", unit


def _skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


def _one_line(error: BaseException) -> str:
    """The error's type and the first line of its message, at most 300 characters."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}"[:300]


def _progress(message: str) -> None:
    print(f"bench suite: {message}", file=sys.stderr, flush=True)


def _write(out: Path, report: dict) -> None:
    """Replace `out` with the report at once (a reader never sees half of it)."""
    temporary = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(report, indent=1) + "\n")
        temporary.replace(out)
    except OSError as error:
        raise ConfigError(f"cannot write {out} ({error.strerror}): pass --out a file in a writable folder") from None
