"""Compute-optimal frontiers, the three ways of Hoffmann et al. 2022: the best-error envelope over runs
(approach 1), IsoFLOP parabolas (approach 2) and the optimum of a fitted L(N, D) (approach 3)."""

from analysis.frontier.allocation import Allocation
from analysis.frontier.envelope import Envelope, envelope_frontier
from analysis.frontier.flops import FlopsModel, flops_model
from analysis.frontier.isoflop import IsoFlop, Parabola, isoflop_frontier
from analysis.frontier.parametric import parametric_frontier

__all__ = [
    "Allocation", "Envelope", "FlopsModel", "IsoFlop", "Parabola", "envelope_frontier", "flops_model",
    "isoflop_frontier", "parametric_frontier",
]
