"""Data generated from laws with known parameters: for tests, examples and the benchmark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.laws import CHINCHILLA, Law, predict
from analysis.table.contract import RESULT_COLUMNS, Status

# L(N, D) for top-1 error: the exponents of Hoffmann et al. 2022, scales that keep the error below 1
TOP1_LAW = {"E": 0.1, "A": 20.0, "B": 12.0, "alpha": 0.34, "beta": 0.28}


def sample_law(law: Law, params: Mapping[str, float], x: Sequence[np.ndarray], *, noise: float, seed: int,
               constants: Mapping[str, float] | None = None) -> np.ndarray:
    """y of `law` at inputs `x`, times log-normal noise of standard deviation `noise` in log y."""
    clean = predict(law, params, x, constants)
    return clean * np.exp(noise * np.random.default_rng(seed).standard_normal(clean.shape))


def optimal_size(params: Mapping[str, float], compute: np.ndarray, flops_per_param: float) -> np.ndarray:
    """The N minimising E + A/N^alpha + B/D^beta at compute C = flops_per_param·N·D (closed form)."""
    alpha, beta = params["alpha"], params["beta"]
    scale = (alpha * params["A"] / (beta * params["B"])) ** (1.0 / (alpha + beta))
    return scale * (np.asarray(compute) / flops_per_param) ** (beta / (alpha + beta))


def synthetic_sweep(params: Mapping[str, float] = TOP1_LAW, *, budgets: Sequence[float] = (1e14, 1e15, 1e16, 1e17),
                    sizes_per_decade: int = 4, window: float = 8.0, evals_per_run: int = 8,
                    flops_per_param: float = 6.0, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """A results table of an IsoFLOP sweep whose top-1 error follows the joint law `params` (Hoffmann form).

    Model sizes lie on a log grid (`sizes_per_decade`); each budget trains the sizes within a factor `window`
    of its true optimum for C / (flops_per_param·N) examples, evaluated `evals_per_run` times on the way."""
    rng = np.random.default_rng(seed)
    grid = 10.0 ** (np.arange(4 * sizes_per_decade, 10 * sizes_per_decade + 1) / sizes_per_decade)
    rows = []
    for budget in budgets:
        best = optimal_size(params, budget, flops_per_param)
        for size in grid[(grid >= best / window) & (grid <= best * window)]:
            final = budget / (flops_per_param * size)
            seen = np.round(final * np.geomspace(1.0 / 16.0, 1.0, evals_per_run))
            error = predict(CHINCHILLA, params, (np.full(len(seen), size), seen))
            error = error * np.exp(noise * rng.standard_normal(len(seen)))
            run_id = f"C{budget:.0e}/N{size:.3g}"
            for index, (examples, value) in enumerate(zip(seen, error)):
                rows.append({
                    "run_id": run_id, "sweep": "synthetic", "family": "synthetic", "params": int(size),
                    "flops_per_example": flops_per_param * size, "dataset": "synthetic", "num_classes": 1000,
                    "train_examples": 1_281_167, "resolution": 224, "batch_size": 256,
                    "step": int(examples // 256), "examples_seen": int(examples),
                    "compute": flops_per_param * size * int(examples), "lr": 1e-3, "weight_decay": 1e-4,
                    "schedule": "constant", "seed": 0, "is_final": index == len(seen) - 1,
                    "top1_error": float(value), "top5_error": float(value) / 3.0, "status": Status.COMPLETED,
                    "device_kind": "synthetic",
                })
    return pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
