"""What the analysis commands do, given their parsed options (see analysis.cli for the options).
Heavy modules are imported inside the handlers, so registering the commands stays cheap."""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from analysis.request import FitRequest
    from analysis.study import Study
    from analysis.table.load import Results

DEFAULT_LAWS = ("saturating", "power", "broken", "m4", "chinchilla", "rosenfeld")
FIGURE_LAWS = ("saturating", "chinchilla")


def guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn bad input into `error: ...` on stderr and exit status 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except AnalysisError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return run


@guarded
def run_fit(args: argparse.Namespace) -> int:
    """`fit`: print each law's parameters with intervals and the backtest; write them as JSON."""
    from analysis.backtest import backtest
    from analysis.request import fit_request
    from analysis.summary import backtest_record, format_backtest, format_law, law_record

    results, requests, notes = _load(args, DEFAULT_LAWS)
    frame = results.frame
    print(f"{results.source}: {len(frame)} usable rows, {results.dropped} dropped (status not completed)")
    for note in notes:
        print(f"note: {note}")
    records = []
    for request in requests:
        fitted = fit_request(request, frame, resamples=args.bootstrap, by_run=args.resample == "runs",
                             seed=args.seed, confidence=args.confidence)
        records.append(law_record(fitted))
        print(f"\n{format_law(records[-1])}")
    tested = backtest_record(backtest(requests, frame, cutoff=args.cutoff))
    print(f"\n{format_backtest(tested, args.y)}")
    payload = {"table": results.source, "y": args.y, "rows": len(frame), "dropped_rows": results.dropped,
               "laws": records, "backtest": tested}
    write_json(args.json, payload)
    print(f"\nwrote {args.json}")
    return 0


@guarded
def run_plot(args: argparse.Namespace) -> int:
    """`plot`: write the figures."""
    from analysis.plots import draw_figures

    study = _study(args, FIGURE_LAWS, with_backtest=False)
    args.out.mkdir(parents=True, exist_ok=True)
    written, skipped = draw_figures(study, args.out, figure_formats(args.formats))
    for warning in (*study.warnings, *skipped):
        print(f"warning: {warning}")
    _print_frontiers(study)
    for name, paths in written.items():
        print(f"{name}: {', '.join(str(path) for path in paths)}")
    return 0


@guarded
def run_report(args: argparse.Namespace) -> int:
    """`report`: write the HTML page, its JSON record and the figures."""
    from analysis.plots import draw_figures
    from analysis.report import write_report
    from analysis.summary import format_law_line, study_record

    study = _study(args, DEFAULT_LAWS, with_backtest=True)
    args.out.mkdir(parents=True, exist_ok=True)
    written, skipped = draw_figures(study, args.out, figure_formats(args.formats))
    record = study_record(study)
    record["warnings"].extend(skipped)
    for warning in record["warnings"]:
        print(f"warning: {warning}")
    for law in record["laws"]:
        print(format_law_line(law))
    _print_frontiers(study)
    write_json(args.out / "report.json", record)
    print(f"wrote {write_report(record, written, args.out)} and {args.out / 'report.json'}")
    return 0


@guarded
def run_bench(args: argparse.Namespace) -> int:
    """The fit benchmark: print both timings and best losses."""
    from analysis.bench import benchmark_fit_starts, format_bench

    if args.points < 10:
        raise AnalysisError(f"--points must be at least 10, got {args.points}")
    print(format_bench(benchmark_fit_starts(points=args.points, per_parameter=args.starts, seed=args.seed)))
    return 0


def _load(args: argparse.Namespace, default_laws: Sequence[str]) -> tuple[Results, list[FitRequest], list[str]]:
    """The table and the fit requests the options describe, with notes on default laws left out."""
    from analysis.laws import get_law
    from analysis.request import FitRequest, chance_level
    from analysis.table.contract import parse_mapping
    from analysis.table.load import load_results

    _check_options(args)
    results = load_results(args.table, parse_mapping(args.columns))
    chance = args.random_guess if args.random_guess is not None else chance_level(results.frame, args.y)
    names, notes = list(args.law or default_laws), []
    if chance is None and not args.law:
        needing = [name for name in names if get_law(name).constants]
        names = [name for name in names if name not in needing]
        notes.append(f"left out {', '.join(needing)}: the random-guess value of {args.y} is unknown "
                     "(pass --random-guess to fit them)")
    x_columns = {}
    for item in args.x or []:
        columns = tuple(column.strip() for column in item.split(",") if column.strip())
        if len(columns) not in (1, 2):
            raise AnalysisError(f"--x {item!r}: give one column (one-input laws) or two, N,D (joint laws)")
        x_columns[len(columns)] = columns
    bounds = _bounds(args.bound)
    unknown = sorted(set(bounds) - set(names))
    if unknown:
        raise AnalysisError(f"--bound names law(s) {unknown} that are not being fitted ({', '.join(names)})")
    requests = []
    for name in dict.fromkeys(names):
        law = get_law(name)
        points = args.points if args.points != "auto" else ("envelope" if len(law.inputs) == 1 else "final")
        requests.append(FitRequest(
            law=law, x=x_columns.get(len(law.inputs), law.default_columns), y=args.y, points=points,
            weights=args.weights, huber_delta=args.huber_delta,
            constants={"random_guess": chance} if chance is not None else {}, bounds=bounds.get(name, {}),
            starts=args.starts))
    return results, requests, notes


def _study(args: argparse.Namespace, default_laws: Sequence[str], with_backtest: bool) -> Study:
    from analysis.study import StudyOptions, run_study

    results, requests, notes = _load(args, default_laws)
    if not with_backtest:  # the figures use the first law of each kind only
        kinds = {len(request.law.inputs): request for request in reversed(requests)}
        requests = [request for request in requests if request in kinds.values()]
    budgets = _numbers(args.budgets, "--budgets") if args.budgets else None
    options = StudyOptions(resamples=args.bootstrap, by_run=args.resample == "runs", seed=args.seed,
                           confidence=args.confidence, budgets=budgets, tolerance=args.tolerance,
                           cutoff=getattr(args, "cutoff", None), with_backtest=with_backtest)
    for note in notes:
        print(f"note: {note}")
    return run_study(results, args.y, requests, options)


def _print_frontiers(study: Study) -> None:
    """One line per compute-optimal frontier found: the exponents of N_opt and D_opt with intervals."""
    from analysis.summary import allocation_record, format_allocation

    for part in (study.envelope and study.envelope.allocation, study.isoflop and study.isoflop.allocation,
                 study.parametric):
        if part is not None:
            print(format_allocation(allocation_record(part)))


def _check_options(args: argparse.Namespace) -> None:
    if args.bootstrap < 0 or args.bootstrap == 1:
        raise AnalysisError(f"--bootstrap must be 0 (no intervals) or at least 2, got {args.bootstrap}")
    if not 0 < args.confidence < 1:
        raise AnalysisError(f"--confidence must lie between 0 and 1, got {args.confidence}")
    if not args.huber_delta > 0:
        raise AnalysisError(f"--huber-delta must be positive, got {args.huber_delta}")
    if args.starts is not None and args.starts < 1:
        raise AnalysisError(f"--starts must be at least 1, got {args.starts}")


def _bounds(items: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """`LAW.PARAM=LOW:HIGH` items as {law: {param: (low, high)}}."""
    bounds: dict[str, dict[str, tuple[float, float]]] = {}
    for item in items:
        target, _, interval = item.partition("=")
        law, _, param = target.partition(".")
        low, _, high = interval.partition(":")
        try:
            bounds.setdefault(law, {})[param] = (float(low), float(high))
        except ValueError:
            raise AnalysisError(f"bad --bound {item!r}: write LAW.PARAM=LOW:HIGH, e.g. chinchilla.alpha=0:1") from None
        if not law or not param:
            raise AnalysisError(f"bad --bound {item!r}: write LAW.PARAM=LOW:HIGH, e.g. chinchilla.alpha=0:1")
    return bounds


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise AnalysisError(f"{option} takes comma-separated numbers, got {text!r}") from None


def figure_formats(text: str) -> list[str]:
    """The --formats option's file formats, checked against the ones matplotlib writes here."""
    from analysis.plots.style import FORMATS

    formats = [item.strip().lower() for item in text.split(",") if item.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise AnalysisError(f"--formats {text!r}: choose among {', '.join(FORMATS)}")
    return formats


def write_json(path: Path, value: Any) -> None:
    """Write `value` as indented JSON (numpy numbers as numbers, NaN and infinity as null), making folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(value), indent=2) + "\n")


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy numbers as Python numbers, NaN and infinity as null."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
