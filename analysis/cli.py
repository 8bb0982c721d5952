"""The analysis commands `fit`, `predict`, `plot`, `report` and the `history` group, registered on the `scaling` command
line by `add_commands` (and the fit benchmark by `add_bench_fit`); `python -m analysis.cli COMMAND ...` runs them
on their own. The handlers are in
analysis.commands (and analysis.history.commands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis.commands import run_bench, run_fit, run_plot, run_predict, run_report
from analysis.history.cli import add_history_command

LAW_NAMES = ("power", "saturating", "chinchilla", "rosenfeld", "broken", "m4", "m2", "m3",
             "m4_learned")  # analysis.laws.LAWS, without jax
TABLE_HELP = "results table (.csv or .parquet), or a folder of run workdirs (each with result.json, metrics.jsonl)"
FIT_EPILOG = """\
examples:
  scaling fit runs/sweep/results.parquet --law saturating --law chinchilla --bootstrap 200
  scaling fit curve.csv --law power --law m4 --x data_size --y loss --random-guess 2.3 --bootstrap 100
  scaling fit models.csv --law m2 --law m3 --law m4_learned --x examples --y error --where task=inet_5

One-input laws (power, saturating, broken, m4, and m2, m3, m4_learned: Alabdulmohsin et al.'s estimators, fitted
only when named) are fitted to y against --x (default compute) over the
envelope rows (the best y reached at each compute); joint laws (chinchilla, rosenfeld) to y against
--x N,D (default params,examples_seen) over each run's final row (every row of a table with one row per
model: no step or is_final column, no repeated run_id). Every law's input is checked before any fitting. The
backtest cuts at the compute column; without one (and laws on different x columns) it is skipped with a
warning. Rows whose status is not "completed"
are dropped; --where keeps the rows that match (e.g. --where num_classes=10 on a sweep over data.classes).
A y of exactly 0 is floored at 0.5/n or dropped (--zero-errors), with a warning saying which.
Exit status: 0 done (warnings are printed), 2 bad input.
"""
DEFAULT_LAW_TEXT = "saturating, power, broken, m4, chinchilla, rosenfeld"
PREDICT_EPILOG = """\
examples:
  scaling predict runs/sweep/results.parquet --law saturating --at compute=1e18 --at compute=1e19
  scaling predict runs/sweep/results.parquet --law chinchilla --at params=1e7,examples_seen=1e9
  scaling predict runs/sweep/results.parquet --law chinchilla --verify-below params=2e6 --confidence 0.9

The confidence interval is that of the law's value (percentiles of the bootstrap refits); the prediction
interval adds the fit's log residuals (inflated by sqrt(n/(n-p))) to each refit, so it is the one a new run's
y should fall in, and the one --verify-below scores. 'beyond the data' is the largest ratio of an input to the
largest value of that input fitted.
Exit status: 0 done (warnings are printed), 2 bad input.
"""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `fit`, `plot`, `report` and `history` on an argparse subparsers object."""
    fit = subparsers.add_parser(
        "fit", help="fit scaling laws to a results table; print parameters, intervals and a backtest",
        description="Fit scaling laws (Huber loss on log residuals, L-BFGS from a grid of starts), with "
        "bootstrap intervals, and rank them by extrapolation error beyond a compute cut-off.",
        epilog=FIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _table_and_law_options(fit, default_laws=DEFAULT_LAW_TEXT)
    _cutoff_option(fit)
    fit.add_argument("--json", type=Path, metavar="FILE",
                     help="also write the parameters, intervals and backtest as JSON here (default: none)")
    fit.set_defaults(handler=run_fit)

    predict = subparsers.add_parser(
        "predict", help="predict y at given inputs with bootstrap intervals; check a law on held-out runs",
        description="Fit a law and print its prediction at each --at point, with the bootstrap confidence "
        "interval of the law's value and the prediction interval of one run's y (the fit's residual scatter "
        "added). With --verify-below COLUMN=VALUE: fit on the rows below VALUE, predict every held-out point "
        "and print predicted against observed, with the share inside the prediction interval (its coverage).",
        epilog=PREDICT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _table_and_law_options(predict, default_laws="none: required")
    predict.add_argument("--at", action="append", default=[], metavar="COLUMN=VALUE[,COLUMN=VALUE]",
                         help="inputs to predict at, one per input of the law: its x columns (or symbols x, N, D), "
                              "e.g. compute=1e18 or params=1e9,examples_seen=2e10; repeatable")
    predict.add_argument("--verify-below", metavar="COLUMN=VALUE",
                         help="fit on the rows whose COLUMN lies below VALUE and predict the others, e.g. "
                              "compute=1e16, or params=N to hold out the models of size N and larger")
    predict.add_argument("--json", type=Path, metavar="FILE",
                         help="also write the predictions and the verification as JSON here (default: none)")
    predict.set_defaults(handler=run_predict)

    plot = subparsers.add_parser(
        "plot", help="draw error vs compute, IsoFLOP, error vs data and parameters, optimal N and D vs compute",
        description="Draw the figures (PNG, SVG and PDF). The first one-input --law is the frontier drawn "
        "against compute; the first joint --law gives the parametric optimum.")
    _table_and_law_options(plot, default_laws="saturating and chinchilla")
    _figure_options(plot)
    plot.set_defaults(handler=run_plot)

    report = subparsers.add_parser(
        "report", help="write one HTML page with the figures, the fitted laws, the frontiers and the backtest",
        description="Fit the laws, compute the frontiers (envelope, IsoFLOP, parametric), backtest the laws and "
        "write DIR/report.html (figures embedded), DIR/report.json and the figure files. A table that mixes "
        "class counts (a sweep over data.classes) gets one report per class count, in DIR/classes-K/, and an "
        "index DIR/report.html (--by to group by another column). A table whose runs trained on nested subsets of "
        "several sizes (train_examples) has a data axis: the laws, frontiers and backtest use the runs on the "
        "largest training set, and the runs on smaller subsets at the largest compute they reached, with the "
        "largest set's runs there, get Rosenfeld et al.'s law fitted on params and train_examples (a section and "
        "the figure error_vs_train_examples); --by train_examples gives each subset size its own report instead.")
    _table_and_law_options(report, default_laws=DEFAULT_LAW_TEXT)
    _figure_options(report)
    _cutoff_option(report)
    report.add_argument("--by", metavar="COLUMN",
                        help="one report per value of COLUMN, in DIR/COLUMN-VALUE/ (DIR/classes-K/ for num_classes), "
                             "with an index DIR/report.html (default: num_classes when the table mixes class "
                             "counts; none: one report whatever the table holds)")
    report.set_defaults(handler=run_report)
    add_history_command(subparsers)


def add_bench_fit(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Register the fit benchmark as `name` (`scaling bench fit`, `python -m analysis.cli bench-fit`)."""
    bench = subparsers.add_parser(
        name, help="time the vectorised 4,500-start fit against optax.lbfgs under vmap and a scipy.optimize loop",
        description="Fit Hoffmann et al.'s L(N, D) to generated data from every start of the 4,500-start grid, "
        "vectorised (starts that fall behind dropped early), with optax.lbfgs under jax.vmap and with a per-start "
        "scipy loop, in this process; print each time, its ratio to the scipy loop and its best loss.")
    bench.add_argument("--points", type=int, default=400, help="number of generated (N, D, loss) points (default 400)")
    bench.add_argument("--starts", type=int, metavar="K",
                       help="starting values per parameter, K^5 starts (default: the full grid, 4,500 starts)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the generated data (default 0)")
    bench.add_argument("--scipy-every", type=int, default=1, metavar="K",
                       help="run the scipy loop from every K-th start, its time scaled to all (default 1: all)")
    bench.add_argument("--optax-every", type=int, default=10, metavar="K",
                       help="run optax.lbfgs from every K-th start under one vmap, its time scaled to all: a lower "
                            "bound (default 10)")
    bench.set_defaults(handler=run_bench)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one analysis command (for `python -m analysis.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m analysis.cli",
                                     description="Scaling-law analysis of a results table.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(commands)
    add_bench_fit(commands, "bench-fit")
    args = parser.parse_args(argv)
    return args.handler(args)


def _table_and_law_options(parser: argparse.ArgumentParser, default_laws: str) -> None:
    parser.add_argument("table", metavar="TABLE", help=TABLE_HELP)
    parser.add_argument("--law", action="append", choices=LAW_NAMES, metavar="LAW",
                        help=f"law to fit, repeatable: {', '.join(LAW_NAMES)} (default: {default_laws})")
    parser.add_argument("--x", action="append", metavar="COLUMN[,COLUMN]",
                        help="x column of the one-input laws (default compute), or two columns N,D for the "
                             "joint laws (default params,examples_seen); repeatable")
    parser.add_argument("--y", default="top1_error", metavar="COLUMN",
                        help="column to fit (default top1_error; e.g. top5_error, eval_loss)")
    parser.add_argument("--columns", action="append", default=[], metavar="NAME=COLUMN",
                        help="read the contract's column NAME (run_id, params, compute, examples_seen, is_final, "
                             "status, ...) from the table's COLUMN; repeatable")
    parser.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                        help="fit only the rows where COLUMN=VALUE (or =V1,V2 for any of them, !=, <, <=, >, >= "
                             "for numbers), e.g. num_classes=10; repeatable, all must hold")
    parser.add_argument("--zero-errors", choices=("auto", "floor", "drop"), default="auto",
                        help="rows whose y is exactly 0 (below the evaluation set's resolution, not fittable in "
                             "log space): floor at half of one example, 0.5/n, n the evaluation set's size from "
                             "--eval-examples or the eval_examples column; drop them; auto (default): floor "
                             "where n is known, drop the rest. Either way a warning says how many")
    parser.add_argument("--eval-examples", type=int, metavar="N",
                        help="size of the evaluation set behind --y, for the floor of zero errors (default: the "
                             "table's eval_examples column, for top1_error and top5_error)")
    parser.add_argument("--points", choices=("auto", "all", "final", "envelope"), default="auto",
                        help="rows fitted: all, each run's final row, or the envelope (best y so far in x); "
                             "auto: envelope for one-input laws, final for joint laws")
    parser.add_argument("--weights", metavar="COLUMN", help="column of non-negative point weights")
    parser.add_argument("--huber-delta", type=float, default=1e-3, metavar="DELTA",
                        help="Huber loss threshold on log residuals (default 1e-3, as Hoffmann et al.)")
    parser.add_argument("--bound", action="append", default=[], metavar="LAW.PARAM=LOW:HIGH",
                        help="replace a unit-free parameter's bounds, e.g. chinchilla.alpha=0:1; repeatable")
    parser.add_argument("--random-guess", type=float, metavar="VALUE",
                        help="y of random guessing, held fixed by rosenfeld and m4 (default: from num_classes: "
                             "1-1/K for errors, 1-5/K for top-5 errors, ln K for losses)")
    parser.add_argument("--starts", type=int, metavar="K",
                        help="starting values per parameter, K^P starts (default: each law's full grid, "
                             "e.g. 4,500 for chinchilla)")
    parser.add_argument("--bootstrap", type=int, default=200, metavar="N",
                        help="bootstrap resamples for the intervals (default 200; 0: no intervals)")
    parser.add_argument("--resample", choices=("auto", "rows", "runs"), default="auto",
                        help="what the bootstrap resamples: fitted rows or whole runs; auto (default): whole runs "
                             "wherever the rows carry run_ids of at least 2 runs (rows of one run are not "
                             "independent), else rows")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _cutoff_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cutoff", type=float, metavar="FLOPS",
                        help="backtest: fit below this compute, score above (default: the top quarter of the "
                             "log-compute range is held out)")
    parser.add_argument("--no-backtest", action="store_true",
                        help="skip the backtest (which refits every law below the cut-off)")


def _figure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write into")
    parser.add_argument("--verify-below", metavar="COLUMN=VALUE",
                        help="predict, then verify: refit the headline law on the rows whose COLUMN lies below VALUE "
                             "and check its prediction intervals on the rest (default: the backtest's cut-off)")
    parser.add_argument("--budgets", metavar="C1,C2,...",
                        help="IsoFLOP budgets in FLOPs (default: clusters of the runs' final compute)")
    parser.add_argument("--tolerance", type=float, default=0.1,
                        help="relative compute difference within which runs share an IsoFLOP budget (default 0.1)")
    parser.add_argument("--formats", default="png,svg,pdf", help="figure formats (default png,svg,pdf)")


if __name__ == "__main__":
    sys.exit(main())
