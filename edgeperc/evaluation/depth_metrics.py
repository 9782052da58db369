"""Depth and uncertainty metrics, pure numpy: the columns of the depth literature (AbsRel, SqRel,
RMSE, RMSE-log, delta thresholds) and of uncertainty evaluation (sparsification curves, AUSE and
AURG against the oracle and random orderings, Gaussian NLL, sigma coverage and reliability).

Every function takes flat or image arrays plus a validity mask; invalid or non-finite truth
pixels are ignored. Curves are computed per image and averaged (as in the depth-uncertainty
literature), so one large image does not dominate.
"""

from __future__ import annotations

import math

import numpy as np

from edgeperc.errors import InvalidInputError

SPARSIFICATION_STEPS = 20  # remove 0%, 5%, ..., 95% of the pixels
RELIABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.683, 0.7, 0.8, 0.9, 0.954, 0.99)


def _valid(pred: np.ndarray, truth: np.ndarray, *others: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or any(np.shape(o) != truth.shape for o in others):
        raise InvalidInputError(f"prediction {pred.shape} and truth {truth.shape} (and uncertainty) must have one shape")
    keep = np.isfinite(truth) & (truth > 0) & np.isfinite(pred)
    if valid is not None:
        keep &= np.asarray(valid, bool)
    return (np.clip(pred[keep], 1e-6, None), truth[keep], *(np.asarray(o, np.float64)[keep] for o in others))


def depth_errors(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """AbsRel, SqRel, RMSE, RMSE-log, delta < 1.25^k (Eigen et al.'s columns) over valid pixels."""
    p, t = _valid(pred, truth, valid=valid)
    if p.size == 0:
        raise InvalidInputError("no valid truth pixels to evaluate")
    ratio = np.maximum(p / t, t / p)
    return {
        "abs_rel": float(np.mean(np.abs(p - t) / t)),
        "sq_rel": float(np.mean((p - t) ** 2 / t)),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(p) - np.log(t)) ** 2))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
    }


def _metric(p: np.ndarray, t: np.ndarray, name: str) -> float:
    if name == "rmse":
        return float(np.sqrt(np.mean((p - t) ** 2)))
    if name == "abs_rel":
        return float(np.mean(np.abs(p - t) / t))
    raise InvalidInputError(f"sparsification metric must be rmse or abs_rel, got {name!r}")


def sparsification_curves(pred: np.ndarray, truth: np.ndarray, sigma: np.ndarray, metric: str = "rmse",
                          valid: np.ndarray | None = None, steps: int = SPARSIFICATION_STEPS) -> dict[str, np.ndarray]:
    """One image: metric of the pixels left after removing the fraction f most uncertain ones
    (by ``sigma``), for f = 0, 1/steps, ...; the oracle removes by the true error, the random
    ordering keeps the full-set value in expectation. Returns fractions, model, oracle, random."""
    p, t, s = _valid(pred, truth, sigma, valid=valid)
    if p.size < steps:
        raise InvalidInputError(f"need at least {steps} valid pixels for a sparsification curve, got {p.size}")
    error = np.abs(p - t) if metric == "rmse" else np.abs(p - t) / t
    by_sigma, by_error = np.argsort(-s, kind="stable"), np.argsort(-error, kind="stable")
    fractions = np.arange(steps) / steps
    model, oracle = np.empty(steps), np.empty(steps)
    for i, f in enumerate(fractions):
        drop = int(round(f * p.size))
        model[i] = _metric(p[by_sigma[drop:]], t[by_sigma[drop:]], metric)
        oracle[i] = _metric(p[by_error[drop:]], t[by_error[drop:]], metric)
    return {"fractions": fractions, "model": model, "oracle": oracle, "random": np.full(steps, model[0])}


def ause_aurg(curves: dict[str, np.ndarray]) -> tuple[float, float]:
    """AUSE = area between the model's and the oracle's curve; AURG = area between the random and
    the model's curve (> 0: sigma ranks errors better than chance). Rectangle rule over fractions."""
    width = 1.0 / len(curves["fractions"])
    ause = float(np.sum(curves["model"] - curves["oracle"]) * width)
    aurg = float(np.sum(curves["random"] - curves["model"]) * width)
    return ause, aurg


def gaussian_nll(pred: np.ndarray, truth: np.ndarray, log_var: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean negative log-likelihood of the truth under N(pred, exp(log_var)), in nats."""
    p, t, lv = _valid(pred, truth, log_var, valid=valid)
    return float(np.mean(0.5 * (math.log(2 * math.pi) + lv + (t - p) ** 2 / np.exp(lv))))


def coverage(pred: np.ndarray, truth: np.ndarray, sigma: np.ndarray, k: float, valid: np.ndarray | None = None) -> float:
    """Fraction of valid pixels with |truth - pred| <= k * sigma (ideal: 0.683 at k=1, 0.954 at k=2)."""
    p, t, s = _valid(pred, truth, sigma, valid=valid)
    return float(np.mean(np.abs(t - p) <= k * s))


def reliability(pred: np.ndarray, truth: np.ndarray, sigma: np.ndarray, valid: np.ndarray | None = None,
                levels: tuple[float, ...] = RELIABILITY_LEVELS) -> dict[str, list[float]]:
    """Expected vs observed fraction inside the central Gaussian interval of each level."""
    from statistics import NormalDist

    p, t, s = _valid(pred, truth, sigma, valid=valid)
    z = np.abs(t - p) / np.maximum(s, 1e-12)
    observed = [float(np.mean(z <= NormalDist().inv_cdf(0.5 + level / 2))) for level in levels]
    return {"expected": list(levels), "observed": observed}


def fit_sigma_scale(pred: np.ndarray, truth: np.ndarray, sigma: np.ndarray, valid: np.ndarray | None = None,
                    levels: tuple[float, ...] = RELIABILITY_LEVELS) -> float:
    """The factor s for sigma' = s * sigma that brings observed interval coverage closest to the
    Gaussian ideal (least squares over ``levels``): post-hoc variance scaling (Laves et al. 2020).
    Fitted on coverage rather than on NLL because the NLL optimum, s^2 = mean(z^2), is pulled up
    by the heavy error tail at depth edges and over-widens every interval."""
    from statistics import NormalDist

    p, t, s = _valid(pred, truth, sigma, valid=valid)
    if p.size == 0:
        raise InvalidInputError("no valid pixels to fit a sigma scale on")
    z = np.sort(np.abs(t - p) / np.maximum(s, 1e-12))
    quantiles = np.array([NormalDist().inv_cdf(0.5 + level / 2) for level in levels])
    expected = np.asarray(levels)
    scales = np.exp(np.linspace(np.log(0.05), np.log(20.0), 4001))
    observed = np.searchsorted(z, scales[:, None] * quantiles[None, :], side="right") / z.size
    return float(scales[np.argmin(((observed - expected) ** 2).sum(axis=1))])
