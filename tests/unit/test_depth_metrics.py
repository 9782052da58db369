"""Depth and uncertainty metrics against straightforward references and known cases."""

import math

import numpy as np
import pytest

from edgeperc.errors import InvalidInputError
from edgeperc.evaluation.depth_metrics import (
    ause_aurg,
    coverage,
    depth_errors,
    fit_sigma_scale,
    gaussian_nll,
    reliability,
    sparsification_curves,
)


def test_depth_errors_match_a_loop_reference():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.5, 10, (20, 30))
    pred = truth * rng.uniform(0.7, 1.4, truth.shape)
    truth[0, :5] = np.nan  # invalid pixels are ignored
    got = depth_errors(pred, truth)
    pairs = [(p, t) for p, t in zip(pred.ravel(), truth.ravel()) if np.isfinite(t)]
    n = len(pairs)
    assert got["abs_rel"] == pytest.approx(sum(abs(p - t) / t for p, t in pairs) / n)
    assert got["sq_rel"] == pytest.approx(sum((p - t) ** 2 / t for p, t in pairs) / n)
    assert got["rmse"] == pytest.approx(math.sqrt(sum((p - t) ** 2 for p, t in pairs) / n))
    assert got["rmse_log"] == pytest.approx(math.sqrt(sum((math.log(p) - math.log(t)) ** 2 for p, t in pairs) / n))
    assert got["delta1"] == pytest.approx(sum(max(p / t, t / p) < 1.25 for p, t in pairs) / n)
    assert got["delta1"] <= got["delta2"] <= got["delta3"] <= 1


def test_perfect_uncertainty_matches_the_oracle_and_random_sigma_does_not():
    rng = np.random.default_rng(1)
    truth = rng.uniform(1, 8, 5000)
    error = rng.normal(0, 0.5, truth.size)
    pred = truth + error
    oracle_like = sparsification_curves(pred, truth, np.abs(error))
    ause, aurg = ause_aurg(oracle_like)
    assert ause == pytest.approx(0.0, abs=1e-12) and aurg > 0.1
    noise = sparsification_curves(pred, truth, rng.uniform(0, 1, truth.size))
    ause_random, aurg_random = ause_aurg(noise)
    assert ause_random > ause + 0.1 and abs(aurg_random) < 0.05
    assert np.all(np.diff(oracle_like["oracle"]) <= 1e-12)  # removing the worst never raises the error


def test_calibrated_gaussian_has_ideal_coverage_and_lowest_nll():
    rng = np.random.default_rng(2)
    truth = rng.uniform(1, 8, 200_000)
    sigma = 0.05 * truth**1.5
    pred = truth + rng.normal(0, sigma)
    assert coverage(pred, truth, sigma, 1) == pytest.approx(0.683, abs=0.005)
    assert coverage(pred, truth, sigma, 2) == pytest.approx(0.954, abs=0.003)
    rel = reliability(pred, truth, sigma)
    assert np.allclose(rel["expected"], rel["observed"], atol=0.01)
    right = gaussian_nll(pred, truth, np.log(sigma**2))
    assert right < gaussian_nll(pred, truth, np.log((2 * sigma) ** 2))
    assert right < gaussian_nll(pred, truth, np.log((0.5 * sigma) ** 2))


def test_bad_inputs_are_named():
    with pytest.raises(InvalidInputError, match="one shape"):
        depth_errors(np.ones(3), np.ones(4))
    with pytest.raises(InvalidInputError, match="no valid truth"):
        depth_errors(np.ones(3), np.full(3, np.nan))
    with pytest.raises(InvalidInputError, match="metric"):
        sparsification_curves(np.ones(100), np.ones(100), np.ones(100), metric="mae")


@pytest.mark.parametrize("inflation", [0.5, 1.0, 1.7])
def test_sigma_scale_recovers_a_known_miscalibration(inflation):
    """Errors drawn from N(0, sigma_true); the model reports inflation * sigma_true: the fitted
    scale undoes the inflation, and the scaled sigma covers 68.3% / 95.4%."""
    rng = np.random.default_rng(3)
    sigma_true = rng.uniform(0.05, 1.0, 200_000)
    truth = rng.uniform(1.0, 8.0, sigma_true.size)
    pred = truth + rng.normal(0.0, sigma_true)
    reported = inflation * sigma_true
    scale = fit_sigma_scale(pred, truth, reported)
    assert scale == pytest.approx(1.0 / inflation, rel=0.02)
    assert coverage(pred, truth, reported * scale, 1.0) == pytest.approx(0.683, abs=0.01)
    assert coverage(pred, truth, reported * scale, 2.0) == pytest.approx(0.954, abs=0.01)


def test_sigma_scale_needs_valid_pixels():
    with pytest.raises(InvalidInputError, match="no valid pixels"):
        fit_sigma_scale(np.ones(4), np.full(4, np.nan), np.ones(4))
