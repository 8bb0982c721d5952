"""The `history` command group (`scaling history plot|fit|compare`): the record of ImageNet accuracy, its
trends, and reproductions of historic models. Registered by analysis.cli.add_commands; the handlers are in
analysis.history.commands."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from analysis.history.commands import FRONTIER_LAWS, run_history_compare, run_history_fit, run_history_plot

TABLE_HELP = ("history table to use instead of the one shipped with the package (analysis/history/data/"
              "imagenet_history.csv; same columns, see analysis/history/data/README.md)")
PLOT_EPILOG = """\
examples:
  scaling history plot --out figures/history
  scaling history plot --out figures/history --runs runs/sweep/results.csv
  scaling history plot --out figures/history --runs runs/sweep --y minival_error --law power

Writes ilsvrc_top5 (the ILSVRC winners' top-5 test error by year, with the 5.1% human estimate),
top1_by_date (landmark models' top-1 validation error by date, marked by extra training data) and
top1_vs_compute (top-1 error against training compute, log-log). With --runs, your runs (rows whose status
is "completed") and their fitted frontier are drawn on the compute figure. Exit status: 0 done, 2 bad input.
"""
FIT_EPILOG = """\
examples:
  scaling history fit
  scaling history fit --json history_fit.json --bootstrap 1000
  scaling history fit --compute-points envelope --time-points all

Fits, with the analysis' fitter (Huber loss on log residuals, L-BFGS from a grid of starts) and a
bootstrap over models: the ILSVRC winners' top-5 error against time; the top-1 error of models trained on
ImageNet-1k alone, and of models with extra data, against time (error halving time) and against training
compute (the compute factor each halving of the error costs); and, for ImageNet-1k-only models, error
against compute and time at once: the months in which the compute needed for a fixed error halves,
compared with Erdil & Besiroglu 2022 (9 months, 95% CI 4-25). Zero-shot, linear-probe and ensemble rows
are not fitted. Exit status: 0 done, 2 bad input.
"""
COMPARE_EPILOG = """\
examples:
  scaling history compare --runs runs/history
  scaling history compare --runs runs/history --plot figures/history

A run is any folder under ROOT holding config.json and result.json; those whose config.json has a
top-level "reference" object, e.g. {"name": "AlexNet (Krizhevsky et al. 2012)", "top1_error": 0.375,
"top5_error": 0.17, "source": "...", "year": 2012} (errors as fractions; an optional "compute" in FLOPs
places the published point), are compared with result.json's final_eval. Exit status: 0 done, 2 bad input.
"""


def add_history_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `history` and its subcommands `plot`, `fit` and `compare`."""
    history = subparsers.add_parser(
        "history", help="the history of ImageNet accuracy: figures, trends, and reproductions of historic models",
        description="ILSVRC 2010-2017 and landmark models from AlexNet to today, from the table shipped with "
        "the package (analysis/history/data/imagenet_history.csv).")
    commands = history.add_subparsers(dest="history_command", required=True, metavar="HISTORY_COMMAND",
                                      help="plot, fit or compare (each has --help)")
    history.set_defaults(handler=functools.partial(_usage, history))

    plot = commands.add_parser(
        "plot", help="draw the history figures; --runs overlays your sweep and its frontier",
        description="Draw the history of ImageNet error (PNG, SVG, PDF).", epilog=PLOT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    plot.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the figures into")
    plot.add_argument("--runs", metavar="TABLE",
                      help="your results table (.csv/.parquet, or a folder of run workdirs) to draw on the "
                           "error-vs-compute figure; it needs the columns compute and --y")
    plot.add_argument("--y", default="top1_error", metavar="COLUMN",
                      help="error column of --runs, a fraction in [0, 1] (default top1_error)")
    plot.add_argument("--columns", action="append", default=[], metavar="NAME=COLUMN",
                      help="read --runs' column NAME (compute, run_id, status, ...) from its COLUMN; repeatable")
    plot.add_argument("--law", choices=FRONTIER_LAWS, default="saturating",
                      help="law fitted to the envelope of your runs and drawn as their frontier (default saturating)")
    plot.add_argument("--bootstrap", type=int, default=100, metavar="N",
                      help="bootstrap resamples for the band around your frontier (default 100; 0: no band)")
    plot.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    plot.add_argument("--table", type=Path, metavar="CSV", help=TABLE_HELP)
    plot.add_argument("--formats", default="png,svg,pdf", help="figure formats (default png,svg,pdf)")
    plot.set_defaults(handler=run_history_plot)

    fit = commands.add_parser(
        "fit", help="fit error against year and against training compute; print halving times and costs",
        description="Fit the trends of ImageNet error, with bootstrap intervals.", epilog=FIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("--json", type=Path, metavar="FILE", help="also write the fitted numbers as JSON here")
    fit.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                     help="bootstrap resamples (of models) for the intervals (default 1000; 0: no intervals)")
    fit.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    fit.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    fit.add_argument("--huber-delta", type=float, default=0.1, metavar="DELTA",
                     help="Huber loss threshold on log residuals (default 0.1, about the scatter between "
                          "models; 1e-3 makes the fit a least-absolute-deviations one)")
    fit.add_argument("--time-points", choices=("records", "all"), default="records",
                     help="rows of the fits against time: records (each model that beat every earlier one "
                          "of its group, the default) or all")
    fit.add_argument("--compute-points", choices=("all", "envelope"), default="all",
                     help="rows of the fits against compute: all (default) or envelope (each model that beat "
                          "every cheaper one)")
    fit.add_argument("--table", type=Path, metavar="CSV", help=TABLE_HELP)
    fit.set_defaults(handler=run_history_fit)

    compare = commands.add_parser(
        "compare", help="compare your reproductions of historic models with their published errors",
        description="Print reproduced against published error for every run whose config.json has a "
        "`reference`.", epilog=COMPARE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("--runs", type=Path, required=True, metavar="ROOT",
                         help="folder searched (recursively) for run folders with config.json and result.json")
    compare.add_argument("--plot", type=Path, metavar="DIR",
                         help="also draw the reproductions on the history's error-vs-compute figure, in DIR")
    compare.add_argument("--table", type=Path, metavar="CSV", help=TABLE_HELP)
    compare.add_argument("--formats", default="png,svg,pdf", help="figure formats of --plot (default png,svg,pdf)")
    compare.set_defaults(handler=run_history_compare)


def _usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`history` without a subcommand (argparse refuses it first; kept so every command has a handler)."""
    parser.print_usage(sys.stderr)
    return 2
