"""Scaling-law analysis of a results table: fits with intervals, compute-optimal frontiers, backtests,
figures and reports. Stands alone: it reads tables and run folders, and never imports `scaling`.

    from analysis import load_results, get_law, FitRequest, fit_request
    results = load_results("runs/sweep/results.parquet")
    fitted = fit_request(FitRequest(get_law("saturating"), ("compute",), "top1_error", "envelope"),
                         results.frame, resamples=200)
"""

from analysis.backtest import Backtest, backtest
from analysis.bootstrap import Bootstrap, Estimate, bootstrap
from analysis.errors import AnalysisError
from analysis.fit import Fit, fit_law
from analysis.frontier import envelope_frontier, flops_model, isoflop_frontier, parametric_frontier
from analysis.laws import LAWS, Law, get_law, predict
from analysis.request import FitRequest, FittedLaw, fit_request
from analysis.study import Study, StudyOptions, run_study
from analysis.table.load import Results, load_results

__all__ = [
    "LAWS", "AnalysisError", "Backtest", "Bootstrap", "Estimate", "Fit", "FitRequest", "FittedLaw", "Law",
    "Results", "Study", "StudyOptions", "backtest", "bootstrap", "envelope_frontier", "fit_law", "fit_request",
    "flops_model", "get_law", "isoflop_frontier", "load_results", "parametric_frontier", "predict", "run_study",
]
