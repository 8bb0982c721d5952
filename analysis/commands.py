"""What the analysis commands do, given their parsed options (see analysis.cli for the options).
Heavy modules are imported inside the handlers, so registering the commands stays cheap."""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.errors import AnalysisError
from analysis.files import write_atomically

if TYPE_CHECKING:
    import pandas as pd

    from analysis.request import FitRequest
    from analysis.study import Study
    from analysis.table.load import Results

DEFAULT_LAWS = ("saturating", "power", "broken", "m4", "chinchilla", "rosenfeld")
FIGURE_LAWS = ("saturating", "chinchilla")
RESAMPLE = {"auto": None, "rows": False, "runs": True}  # --resample as the bootstrap's by_run


def guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn bad input, and a file that cannot be written (a full disk, say), into `error: ...` on stderr and exit
    status 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except AnalysisError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except OSError as error:
            place = f" ({error.filename})" if error.filename else ""
            print(f"error: {error.strerror or error}{place}; check the path, its permissions and the free disk space",
                  file=sys.stderr)
            return 2

    return run


@guarded
def run_fit(args: argparse.Namespace) -> int:
    """`fit`: print each law's parameters with intervals and the backtest; write them as JSON if --json is given."""
    from analysis.backtest import backtest
    from analysis.request import fit_request
    from analysis.summary import backtest_record, format_backtest, format_law, law_record

    results = _prepared(_results(args), args)
    requests, notes = _requests(args, results, DEFAULT_LAWS)
    frame = results.frame
    for request in requests:  # every law's input, before any work
        request.check(frame)
    skipped = None if args.no_backtest else backtest_skipped(requests, frame)
    print(results.describe())
    for note in notes:
        print(f"note: {note}")
    warnings = [*results.warnings, *([skipped] if skipped else [])]
    for warning in warnings:
        print(f"warning: {warning}")
    tested = None
    if not args.no_backtest and not skipped:  # before the fits: a bad --cutoff fails at once
        tested = backtest_record(backtest(requests, frame, cutoff=args.cutoff))
    records = []
    for request in requests:
        fitted = fit_request(request, frame, resamples=args.bootstrap, by_run=_resample_runs(args, frame),
                             seed=args.seed, confidence=args.confidence)
        records.append(law_record(fitted))
        print(f"\n{format_law(records[-1])}")
    if tested:
        print(f"\n{format_backtest(tested, args.y)}")
    payload = {"table": results.source, "y": args.y, "rows": len(frame), "dropped_rows": results.dropped,
               "where": list(results.where), "unselected_rows": results.unselected,
               "zero_errors": results.zero_errors.record() if results.zero_errors else None,
               "laws": records, "backtest": tested, "warnings": warnings}
    if args.json:
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


def backtest_skipped(requests: Sequence[FitRequest], frame: pd.DataFrame) -> str | None:
    """Why the backtest cannot run on this table (None if it can): it cuts at a compute value, so it needs a
    compute column, or laws that all share one x column to cut at instead."""
    xs = {request.x for request in requests}
    if "compute" in frame.columns or (len(xs) == 1 and len(next(iter(xs))) == 1):
        return None
    inputs = "; ".join(f"{request.law.name} on {','.join(request.x)}" for request in requests)
    return (f"skipped the backtest: it cuts the rows at a compute value and the table has no compute column "
            f"({inputs}); map one with --columns compute=COLUMN, or fit only one-input laws on one --x column, "
            "which it then cuts at (--no-backtest silences this)")


@guarded
def run_plot(args: argparse.Namespace) -> int:
    """`plot`: write the figures."""
    formats = figure_formats(args.formats)  # first: it checks that matplotlib can be imported
    from analysis.plots import draw_figures

    study = _study(args, _prepared(_results(args), args), FIGURE_LAWS, figures_only=True)
    args.out.mkdir(parents=True, exist_ok=True)
    written, skipped = draw_figures(study, args.out, formats)
    for warning in (*study.warnings, *skipped):
        print(f"warning: {warning}")
    _print_frontiers(study)
    for name, paths in written.items():
        print(f"{name}: {', '.join(str(path) for path in paths)}")
    return 0


@guarded
def run_report(args: argparse.Namespace) -> int:
    """`report`: write the HTML page, its JSON record and the figures; with --by (by itself when the table
    mixes class counts), one such report per value in DIR/classes-K/ (or DIR/COLUMN-VALUE/) and an index page."""
    from analysis.report import write_index
    from analysis.table.rows import group_folder, mixed_classes
    from analysis.verify import check_below

    formats = figure_formats(args.formats)
    results = _results(args)
    if _verify_below(args):  # before any work: a --verify-below that leaves one side empty is an error
        check_below(results.frame, *_verify_below(args))
    by, automatic = args.by, False
    if by is None and mixed_classes(results.frame):
        by, automatic = "num_classes", True
        classes = ", ".join(str(k) for k in mixed_classes(results.frame))
        print(f"note: the table mixes class counts ({classes}): one report per class count in "
              f"{args.out}/classes-K/ (--by num_classes; --where num_classes=K for one of them)")
    if by is None or by == "none":
        _report(args, _prepared(results, args), args.out, formats)
        return 0
    groups, missing = results.split(by)
    if missing:
        print(f"warning: {missing} rows have no {by} and are in no report")
    index = []
    for value, group in groups:
        folder = args.out / group_folder(by, value)
        print(f"\n== {by}={value}: {len(group.frame)} rows -> {folder}")
        record = _report(args, _prepared(group, args), folder, formats)
        index.append({"value": value, "folder": folder.name, "report": f"{folder.name}/report.html",
                      "rows": record["rows"], "zero_errors": record["zero_errors"], "headline": record["headline"],
                      "laws": record["laws"], "frontiers": record["frontiers"], "warnings": record["warnings"]})
    summary = {"table": results.source, "y": args.y, "by": by, "automatic": automatic,
               "where": list(results.where), "dropped_rows": results.dropped, "rows_without_value": missing,
               "groups": index}
    write_json(args.out / "report.json", summary)
    folders = ", ".join(group["folder"] for group in index)
    print(f"\nwrote {write_index(summary, args.out)} (index of {len(index)} reports: {folders}) and "
          f"{args.out / 'report.json'}")
    return 0


def _report(args: argparse.Namespace, results: Results, out: Path, formats: Sequence[str]) -> dict[str, Any]:
    """One report of `results` in `out`: figures, report.json, report.html; its record."""
    from analysis.plots import draw_figures
    from analysis.report import write_report
    from analysis.summary import format_law_line, study_record, verification_line

    print(results.describe())
    study = _study(args, results, DEFAULT_LAWS, figures_only=False)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = draw_figures(study, out, formats)
    record = study_record(study)
    record["warnings"].extend(skipped)
    for line in record["headline"]["text"]:
        print(line)
    for warning in record["warnings"]:
        print(f"warning: {warning}")
    for law in record["laws"]:
        print(format_law_line(law))
    _print_frontiers(study)
    if record["data_axis"]:
        axis = record["data_axis"]
        print(f"data axis: {axis['split']}")
        if axis["law"]:
            print("data axis: " + format_law_line(axis["law"])
                  + (f" (degenerate: {'; '.join(axis['law']['degenerate'])})" if axis["law"]["degenerate"] else ""))
    if record["verification"]:
        print(f"predict, then verify: {verification_line(record['verification'])}")
    write_json(out / "report.json", record)
    print(f"wrote {write_report(record, written, out)} and {out / 'report.json'}")
    return record


@guarded
def run_predict(args: argparse.Namespace) -> int:
    """`predict`: each law's prediction at every --at point with its intervals, and with --verify-below the
    held-out points predicted from the rest, with the intervals' coverage; as JSON too if --json is given."""
    from analysis.predict import format_predictions, predict_at
    from analysis.request import fit_request
    from analysis.verify import check_below, format_verification, parse_below, verify

    if not args.law:
        raise AnalysisError("predict needs the law to predict with: --law LAW (e.g. --law saturating)")
    if not args.at and not args.verify_below:
        raise AnalysisError("predict needs --at COLUMN=VALUE (e.g. --at compute=1e18) or --verify-below "
                            "COLUMN=VALUE (e.g. --verify-below compute=1e16), or both")
    if args.bootstrap < 2:
        raise AnalysisError(f"predict reports bootstrap intervals: give --bootstrap N with N >= 2 (default 200), "
                            f"not {args.bootstrap}")
    below = parse_below(args.verify_below) if args.verify_below else None
    results = _prepared(_results(args), args)
    frame = results.frame
    requests, notes = _requests(args, results, ())
    points = _points(args.at, requests)
    for request in requests:  # every law's input, before any work
        request.check(frame)
    if below:
        check_below(frame, *below)
    print(results.describe())
    for message in (*(f"note: {note}" for note in notes), *(f"warning: {item}" for item in results.warnings)):
        print(message)
    options = {"resamples": args.bootstrap, "by_run": _resample_runs(args, frame), "seed": args.seed,
               "confidence": args.confidence}
    payload: dict[str, Any] = {"table": results.source, "y": args.y, "rows": len(frame), "where": list(results.where),
                               "predictions": {}, "verifications": {}}
    for request in requests:
        name = request.law.name
        if args.at and not points[name]:
            print(f"\nnote: no --at point gives {name}'s inputs ({', '.join(request.x)})")
        if points[name]:
            fitted = fit_request(request, frame, **options)
            predictions = predict_at(fitted, points[name])
            payload["predictions"][name] = [item.record() for item in predictions]
            print(f"\n{format_predictions(fitted, predictions)}")
        if below:
            checked = verify(request, frame, column=below[0], cutoff=below[1], **options)
            payload["verifications"][name] = checked.record()
            print(f"\n{format_verification(checked)}")
    if args.json:
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


def _points(items: Sequence[str], requests: Sequence[FitRequest]) -> dict[str, list[tuple[float, ...]]]:
    """Each law's --at points: those that give exactly its inputs; an --at that suits no law is an error."""
    from analysis.predict import parse_at

    points: dict[str, list[tuple[float, ...]]] = {request.law.name: [] for request in requests}
    for text in items:
        errors = []
        for request in requests:
            try:
                points[request.law.name].append(parse_at(text, request))
            except AnalysisError as error:
                errors.append(error)
        if len(errors) == len(requests):
            raise errors[0]
    return points


@guarded
def run_bench(args: argparse.Namespace) -> int:
    """The fit benchmark: print both timings and best losses."""
    from analysis.bench import benchmark_fit_starts, format_bench

    if args.points < 10:
        raise AnalysisError(f"--points must be at least 10, got {args.points}")
    for option, every in (("--scipy-every", args.scipy_every), ("--optax-every", args.optax_every)):
        if every < 1:
            raise AnalysisError(f"{option} must be at least 1 (every K-th start), got {every}")
    print(format_bench(benchmark_fit_starts(points=args.points, per_parameter=args.starts, seed=args.seed,
                                            scipy_every=args.scipy_every, optax_every=args.optax_every)))
    return 0


def _results(args: argparse.Namespace) -> Results:
    """The table's completed rows that satisfy every --where condition."""
    from analysis.table.contract import parse_mapping
    from analysis.table.load import load_results
    from analysis.table.rows import parse_where
    from analysis.validate import check_fractions

    _check_options(args)
    conditions = parse_where(args.where)
    results = load_results(args.table, parse_mapping(args.columns)).select(conditions)
    check_fractions(results.frame, args.y)
    return results


def _prepared(results: Results, args: argparse.Namespace) -> Results:
    """`results` with the rows whose y is exactly 0 floored or dropped as --zero-errors says."""
    return results.with_zero_errors(args.y, args.zero_errors, args.eval_examples)


def _requests(args: argparse.Namespace, results: Results,
              default_laws: Sequence[str]) -> tuple[list[FitRequest], list[str]]:
    """The fit requests the options describe, with notes on default laws left out."""
    from analysis.laws import get_law
    from analysis.request import FitRequest, chance_level

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
    if not args.law:  # default laws whose x columns the table lacks are left out, as a table of models needs
        missing = {request.law.name: [c for c in request.x if c not in results.frame.columns] for request in requests}
        left_out = {name: columns for name, columns in missing.items() if columns}
        if left_out and len(left_out) < len(requests):
            requests = [request for request in requests if request.law.name not in left_out]
            columns = sorted({column for items in left_out.values() for column in items})
            notes.append(f"left out {', '.join(left_out)}: the table has no {', '.join(columns)} column (give --x "
                         "COLUMN, or map one with --columns NAME=COLUMN, to fit them)")
    return requests, notes


def _study(args: argparse.Namespace, results: Results, default_laws: Sequence[str], *, figures_only: bool) -> Study:
    """Fit, frontiers, the predict-then-verify check of the frontier law (below --verify-below, else the
    backtest's cut-off) and (for a report, unless --no-backtest) the backtest; `figures_only`: only the first law
    of each kind, which the figures draw, and no backtest."""
    from analysis.study import StudyOptions, run_study

    requests, notes = _requests(args, results, default_laws)
    with_backtest = not figures_only and not args.no_backtest
    if figures_only:  # the figures use the first law of each kind only
        kinds = {len(request.law.inputs): request for request in reversed(requests)}
        requests = [request for request in requests if request in kinds.values()]
    budgets = _numbers(args.budgets, "--budgets") if args.budgets else None
    options = StudyOptions(resamples=args.bootstrap, by_run=RESAMPLE[args.resample], seed=args.seed,
                           confidence=args.confidence, budgets=budgets, tolerance=args.tolerance,
                           cutoff=getattr(args, "cutoff", None), with_backtest=with_backtest,
                           verify_below=_verify_below(args))
    for note in notes:
        print(f"note: {note}")
    return run_study(results, args.y, requests, options)


def _verify_below(args: argparse.Namespace) -> tuple[str, float] | None:
    """The (column, cut-off) of --verify-below where the command has that option and it is given."""
    from analysis.verify import parse_below

    text = getattr(args, "verify_below", None)
    return parse_below(text) if text else None


def _resample_runs(args: argparse.Namespace, frame: pd.DataFrame) -> bool:
    """Whether the bootstrap resamples whole runs: as --resample says; auto: wherever the table has run ids."""
    from analysis.bootstrap import resample_runs

    return resample_runs(frame["run_id"].to_numpy() if "run_id" in frame.columns else None, RESAMPLE[args.resample])


def _print_frontiers(study: Study) -> None:
    """One line per compute-optimal frontier found: the exponents of N_opt and D_opt with intervals, and why it
    is degenerate where it is."""
    from analysis.summary import allocation_record, format_allocation

    for part in (study.envelope and study.envelope.allocation, study.isoflop and study.isoflop.allocation,
                 study.parametric):
        if part is not None:
            print(format_allocation({**allocation_record(part), "degenerate": list(study.problems[part.method])}))


def _check_options(args: argparse.Namespace) -> None:
    if args.bootstrap < 0 or args.bootstrap == 1:
        raise AnalysisError(f"--bootstrap must be 0 (no intervals) or at least 2, got {args.bootstrap}")
    if not 0 < args.confidence < 1:
        raise AnalysisError(f"--confidence must lie between 0 and 1, got {args.confidence}")
    if not args.huber_delta > 0:
        raise AnalysisError(f"--huber-delta must be positive, got {args.huber_delta}")
    if args.starts is not None and args.starts < 1:
        raise AnalysisError(f"--starts must be at least 1, got {args.starts}")
    if args.eval_examples is not None and args.eval_examples < 1:
        raise AnalysisError(f"--eval-examples must be at least 1, got {args.eval_examples}")
    if getattr(args, "json", None):
        check_writable(args.json, "--json", folder=False)
    if getattr(args, "out", None):
        check_writable(args.out, "--out", folder=True)


def check_writable(path: Path, option: str, *, folder: bool) -> None:
    """Refuse, before any work, an output path that cannot be written: under a file, a folder given for a file (or
    the reverse), or in a place this user may not write."""
    if path.exists() and path.is_dir() != folder:
        raise AnalysisError(f"{option} {path} is a {'file' if folder else 'folder'}; give the path of a "
                            f"{'folder' if folder else 'file'} to write")
    target = next(place for place in (path, *path.parents) if place.exists())
    if not target.is_dir() and target != path:
        raise AnalysisError(f"{option} {path} cannot be written: {target} is a file, not a folder; choose another "
                            "path")
    if not os.access(target, os.W_OK):
        raise AnalysisError(f"{option} {path} cannot be written: {target} is read-only for this user; choose "
                            "another path")


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
    """The --formats option's file formats, checked against the ones matplotlib writes here; called before any work
    by every command that draws, so that one without matplotlib stops at once with an error saying how to get it."""
    try:
        from analysis.plots.style import FORMATS
    except ImportError as error:
        if not (error.name or "").startswith("matplotlib"):
            raise
        raise AnalysisError(f"drawing figures needs matplotlib, which cannot be imported here ({error}); install "
                            "it: pip install matplotlib (`fit`, `history fit` and `history compare` without --plot "
                            "need none)") from None
    formats = [item.strip().lower() for item in text.split(",") if item.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise AnalysisError(f"--formats {text!r}: choose among {', '.join(FORMATS)}")
    return formats


def write_json(path: Path, value: Any) -> None:
    """Write `value` as indented JSON (numpy numbers as numbers, NaN and infinity as null), making folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(_plain(value), indent=2) + "\n")


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
