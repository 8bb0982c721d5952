"""What `scaling history plot|fit|compare` do, given their parsed options (see analysis.history.cli).
Heavy modules are imported inside the handlers, so registering the commands stays cheap."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from analysis.commands import check_writable, figure_formats, guarded, write_json
from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from analysis.history.plots import Overlay

FRONTIER_LAWS = ("saturating", "power")


@guarded
def run_history_plot(args: argparse.Namespace) -> int:
    """`history plot`: the three figures, with a sweep's runs and frontier overlaid if --runs is given."""
    formats = figure_formats(args.formats)  # first: it checks that matplotlib can be imported
    _check_bootstrap(args.bootstrap)
    check_writable(args.out, "--out", folder=True)
    from analysis.history.fit import FitOptions, history_trends
    from analysis.history.plots import compute_figure, date_figure, ilsvrc_figure
    from analysis.history.table import load_history
    from analysis.plots.style import paper_style, save

    history = load_history(args.table)
    overlay, warnings = _overlay(args) if args.runs else (None, [])
    trends, skipped = history_trends(history, FitOptions(resamples=0))
    args.out.mkdir(parents=True, exist_ok=True)
    with paper_style():
        figures = {"ilsvrc_top5": ilsvrc_figure(history), "top1_by_date": date_figure(history, trends),
                   "top1_vs_compute": compute_figure(history, trends, overlay=overlay)}
        written = {name: save(figure, args.out, name, formats) for name, figure in figures.items()}
    for warning in (*warnings, *skipped, *(warning for trend in trends for warning in trend.warnings)):
        print(f"warning: {warning}")
    for name, paths in written.items():
        print(f"{name}: {', '.join(str(path) for path in paths)}")
    return 0


@guarded
def run_history_fit(args: argparse.Namespace) -> int:
    """`history fit`: print the trends with their intervals; write them as JSON if --json is given."""
    from analysis.history.fit import ERDIL_BESIROGLU, FitOptions, format_trend, history_trends, trend_record
    from analysis.history.table import HISTORY_TABLE, load_history

    _check_bootstrap(args.bootstrap)
    if not 0 < args.confidence < 1:
        raise AnalysisError(f"--confidence must lie between 0 and 1, got {args.confidence}")
    if not args.huber_delta > 0:
        raise AnalysisError(f"--huber-delta must be positive, got {args.huber_delta}")
    if args.json:
        check_writable(args.json, "--json", folder=False)
    history = load_history(args.table)
    source = str(args.table or HISTORY_TABLE)
    print(f"{source}: {len(history)} rows; zero-shot, linear-probe and ensemble rows are not fitted")
    options = FitOptions(resamples=args.bootstrap, seed=args.seed, confidence=args.confidence,
                         huber_delta=args.huber_delta, time_points=args.time_points,
                         compute_points=args.compute_points)
    trends, skipped = history_trends(history, options)
    records = [trend_record(trend) for trend in trends]
    for record in records:
        print(f"\n{format_trend(record)}")
    for warning in skipped:
        print(f"\nwarning: {warning}")
    if args.json:
        payload = {"table": source, "huber_delta": args.huber_delta, "trends": records, "skipped": skipped,
                   "erdil_besiroglu_2022": ERDIL_BESIROGLU}
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


@guarded
def run_history_compare(args: argparse.Namespace) -> int:
    """`history compare`: reproduced against published for every run with a `reference`; --plot places them
    on the history's error-vs-compute axes."""
    from analysis.history.runs import format_comparison, reference_runs
    from analysis.history.table import load_history

    formats = figure_formats(args.formats) if args.plot else []  # without --plot, no matplotlib needed
    runs = reference_runs(args.runs)
    history = load_history(args.table) if args.plot else None
    print(format_comparison(runs))
    if args.plot:
        from analysis.history.fit import FitOptions, history_trends
        from analysis.history.plots import compute_figure
        from analysis.plots.style import paper_style, save

        unplaced = runs[runs["compute"].isna() | runs["top1_error"].isna()]
        for row in unplaced.itertuples(index=False):
            print(f"warning: {row.run} ({row.name}) is not drawn: its result.json has no compute or no top-1 error")
        trends, skipped = history_trends(history, FitOptions(resamples=0))
        for warning in skipped:
            print(f"warning: {warning}")
        with paper_style():
            figure = compute_figure(history, trends, reproduced=runs)
            paths = save(figure, args.plot, "reproductions_vs_compute", formats)
        print(f"reproductions_vs_compute: {', '.join(str(path) for path in paths)}")
    return 0


def _overlay(args: argparse.Namespace) -> tuple[Overlay, list[str]]:
    """The --runs table as an overlay with its fitted frontier, and warnings about what could not be fitted."""
    from analysis.history.plots import Overlay
    from analysis.laws import get_law
    from analysis.request import FitRequest, fit_request
    from analysis.table.contract import parse_mapping, require_columns
    from analysis.table.load import load_results
    from analysis.validate import positive_column

    results = load_results(args.runs, parse_mapping(args.columns))
    frame = results.frame
    require_columns(frame, ["compute", args.y], "overlaying your runs on the history (--runs)")
    for column in ("compute", args.y):
        frame[column] = positive_column(frame, column)
    if frame[args.y].max() >= 1:
        raise AnalysisError(f"--runs {args.runs}: column {args.y!r} holds values >= 1; the history axes show "
                            "errors as fractions in [0, 1] (e.g. top1_error): pick an error column with --y")
    request = FitRequest(law=get_law(args.law), x=("compute",), y=args.y, points="envelope")
    warnings = list(results.warnings)  # runs of the folder left unread, repeated rows
    try:
        frontier = fit_request(request, frame, resamples=args.bootstrap, seed=args.seed)
        warnings.extend(frontier.warnings)
    except AnalysisError as error:
        frontier = None
        warnings.append(f"your runs are drawn without a frontier: {error}")
    return Overlay(frame=frame, y=args.y, source=str(args.runs), frontier=frontier), warnings


def _check_bootstrap(resamples: int) -> None:
    if resamples < 0 or resamples == 1:
        raise AnalysisError(f"--bootstrap must be 0 (no intervals) or at least 2, got {resamples}")
