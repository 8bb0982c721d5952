"""Sweeps: grids of config overrides, run locally or on Slurm, resumable, collected into one table."""

from scaling.sweep.grid import chain, fixed, product, sweep, zipped

__all__ = ["chain", "fixed", "product", "sweep", "zipped"]
