"""The scaling laws of analysis/laws written out again by hand, in plain numpy and in each paper's own form, so
that tests can generate data and expected values without the code under test (never import `analysis` here).

Each function takes the inputs, then the parameters by the names analysis/laws gives them; `formula` looks one
up by law name and calls it with a parameter dict, as `analysis.laws.predict` is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

BISECTION_STEPS = 200  # halves the bracket of M4's solution down to float64 rounding, whatever its width


def power(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """E = a·x^(-b): Kaplan et al. 2020, 'Scaling laws for neural language models', eq. 1.1-1.3,
    L(X) = (X_c / X)^(alpha_X), with a = X_c^(alpha_X) and b = alpha_X (also Hestness et al. 2017)."""
    return a * x ** (-b)


def saturating(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """E = a·(x + d)^(-b) + c: Zhai et al. 2022, 'Scaling vision transformers', eq. 1 (their compute C is x)."""
    return a * (x + d) ** (-b) + c


def chinchilla(n: np.ndarray, d: np.ndarray, E: float, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """L(N, D) = E + A/N^alpha + B/D^beta: Hoffmann et al. 2022, 'Training compute-optimal large language
    models', eq. 2 (N parameters, D training tokens; here examples)."""
    return E + A / n**alpha + B / d**beta


def rosenfeld(m: np.ndarray, n: np.ndarray, a: float, alpha: float, b: float, beta: float, c_inf: float,
              random_guess: float, eta: float = 1.0) -> np.ndarray:
    """eps(m, n) = eps0·|e / (e - i·eta)| with e = a·n^(-alpha) + b·m^(-beta) + c_inf: Rosenfeld et al. 2020,
    'A constructive prediction of the generalization error across scales' (ICLR), eq. 5; m is the model size,
    n the data size, eps0 the random-guess error. Evaluated with complex arithmetic, as the paper writes it."""
    e = a * n ** (-alpha) + b * m ** (-beta) + c_inf
    return random_guess * np.abs(e / (e - 1j * eta))


def broken(x: np.ndarray, a: float, b: float, c0: float, c1: float, d1: float, f1: float) -> np.ndarray:
    """y = a + (b·x^(-c0))·(1 + (x/d1)^(1/f1))^(-c1·f1): Caballero et al. 2022, 'Broken neural scaling laws'
    (ICLR 2023), eq. 1 with one break (n = 1), as in the authors' code (ethancaballero/broken_neural_scaling_laws,
    make_figure_1__decomposition_of_bnsl_into_power_law_segments.py)."""
    return a + b * x ** (-c0) * (1.0 + (x / d1) ** (1.0 / f1)) ** (-c1 * f1)


def m4(x: np.ndarray, beta: float, c: float, alpha: float, e_inf: float, random_guess: float) -> np.ndarray:
    """The E solving (E - e_inf) / (eps0 - E)^alpha = beta·x^c, with eps0 the random-guess error: the estimator
    M4 of Alabdulmohsin, Neyshabur and Zhai 2022, 'Revisiting neural scaling laws in language and vision'
    (NeurIPS), as the authors' code states it (google-research/revisiting_neural_scaling_laws/methods/m4.py:
    `_g(loss) = _f(x)`). (E - e_inf) - beta·x^c·(eps0 - E)^alpha rises from below 0 at E = e_inf to above 0 at
    E = eps0, so plain bisection on [e_inf, eps0] finds E."""
    target = beta * np.asarray(x, dtype=np.float64) ** c
    low, high = np.full_like(target, e_inf), np.full_like(target, random_guess)
    for _ in range(BISECTION_STEPS):
        middle = 0.5 * (low + high)
        above = (middle - e_inf) - target * (random_guess - middle) ** alpha > 0
        low, high = np.where(above, low, middle), np.where(above, middle, high)
    return 0.5 * (low + high)


def m4_learned(x: np.ndarray, beta: float, c: float, alpha: float, e_inf: float, span: float) -> np.ndarray:
    """M4 (see `m4`) with its random-guess level eps0 = e_inf + span a parameter, as the authors' code fits it by
    default (methods/m4.py: `update_err_0=True`)."""
    return m4(x, beta, c, alpha, e_inf, random_guess=e_inf + span)


def m2(x: np.ndarray, beta: float, c: float, e_inf: float) -> np.ndarray:
    """E = beta·x^c + e_inf (c < 0): the estimator M2 of Alabdulmohsin et al. 2022, as the authors' code states
    it (google-research/revisiting_neural_scaling_laws/methods/m2.py: `predict_loss = _f(x) + err_inf`)."""
    return beta * x**c + e_inf


def m3(x: np.ndarray, beta: float, c: float, gamma: float) -> np.ndarray:
    """E = beta·(1/x + gamma)^(-c): the estimator M3 of Alabdulmohsin et al. 2022, as the authors' code states
    it (methods/m3.py: `beta·(1/x + gamma)^c'` with c' >= 0; analysis/laws names -c' as c, c <= 0)."""
    return beta * (1.0 / x + gamma) ** (-c)


FORMULAS: dict[str, Callable[..., np.ndarray]] = {
    "power": power, "saturating": saturating, "chinchilla": chinchilla, "rosenfeld": rosenfeld, "broken": broken,
    "m4": m4, "m2": m2, "m3": m3, "m4_learned": m4_learned,
}
NEEDS_RANDOM_GUESS = ("rosenfeld", "m4")


def formula(name: str, params: Mapping[str, float], x: Sequence[np.ndarray],
            constants: Mapping[str, float] | None = None) -> np.ndarray:
    """The hand-written law `name` at inputs `x` (one array per input), with `constants` (random_guess) where
    the law needs them."""
    extra = {"random_guess": (constants or {})["random_guess"]} if name in NEEDS_RANDOM_GUESS else {}
    inputs = [np.asarray(values, dtype=np.float64) for values in x]
    return np.asarray(FORMULAS[name](*inputs, **params, **extra), dtype=np.float64)


def noisy(clean: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """`clean` times log-normal noise of standard deviation `noise` in log y."""
    return clean * np.exp(noise * np.random.default_rng(seed).standard_normal(np.shape(clean)))
