"""The scaling laws the analysis can fit, by name, and `predict` to evaluate one."""

from __future__ import annotations

from analysis.errors import AnalysisError
from analysis.laws.base import Derived, Law, Param, predict
from analysis.laws.broken import BROKEN
from analysis.laws.chinchilla import CHINCHILLA
from analysis.laws.m2 import M2
from analysis.laws.m3 import M3
from analysis.laws.m4 import M4, M4_LEARNED
from analysis.laws.power import POWER
from analysis.laws.rosenfeld import ROSENFELD
from analysis.laws.saturating import SATURATING

LAWS = {law.name: law for law in (POWER, SATURATING, CHINCHILLA, ROSENFELD, BROKEN, M4, M2, M3, M4_LEARNED)}

__all__ = [
    "BROKEN", "CHINCHILLA", "LAWS", "M2", "M3", "M4", "M4_LEARNED", "POWER", "ROSENFELD", "SATURATING", "Derived",
    "Law", "Param", "get_law", "predict",
]


def get_law(name: str) -> Law:
    """The law called `name` (one of LAWS)."""
    if name not in LAWS:
        raise AnalysisError(f"unknown law {name!r}; choose one of {', '.join(LAWS)}")
    return LAWS[name]
