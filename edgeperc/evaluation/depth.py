"""Held-out evaluation of depth models on generated panoramas: the depth columns, the
uncertainty columns (sparsification/AUSE/AURG, NLL, sigma coverage, reliability), and plots.
Several models (FP32, INT8...) run on the same panoramas so their columns sit side by side."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgeperc.evaluation.depth_metrics import (
    ause_aurg,
    coverage,
    depth_errors,
    gaussian_nll,
    reliability,
    sparsification_curves,
)

# HoHoNet (Sun et al., CVPR 2021) on Stanford2D3D, as published; real data, not ours.
HOHONET_STANFORD2D3D = {"abs_rel": 0.1014, "delta1": 0.9054}


def evaluate_estimators(estimators: dict, recipe_name: str, count: int, seed: int, progress=None) -> dict:
    """{name: DepthEstimator} -> {"models": {name: metrics}, "curves": {...}, "reliability": {...}}."""
    from edgeperc.synth.panoramas import panorama_recipe, render_panorama

    first = next(iter(estimators.values()))
    recipe = panorama_recipe(recipe_name, first.model_hw)
    rng = np.random.default_rng(seed)
    per_model: dict[str, dict[str, list]] = {name: {"errors": [], "curves_rmse": [], "curves_abs_rel": [], "pred": [],
                                                    "sigma": [], "truth": [], "ms": [], "cov1": [], "cov2": []} for name in estimators}
    for _ in range(count):
        pano = render_panorama(rng, recipe)
        truth = np.where(pano.valid, pano.depth, np.nan).astype(np.float32)
        for name, estimator in estimators.items():
            start = time.perf_counter()
            result = estimator.estimate(pano.rgb)
            per_model[name]["ms"].append((time.perf_counter() - start) * 1e3)
            acc = per_model[name]
            acc["errors"].append(depth_errors(result.depth_m, truth))
            acc["curves_rmse"].append(sparsification_curves(result.depth_m, truth, result.sigma_m, "rmse"))
            acc["curves_abs_rel"].append(sparsification_curves(result.depth_m, truth, result.sigma_m, "abs_rel"))
            keep = np.isfinite(truth)
            acc["pred"].append(result.depth_m[keep])
            acc["sigma"].append(result.sigma_m[keep])
            acc["truth"].append(truth[keep])
            acc["cov1"].append(coverage(result.depth_m, truth, result.sigma_m, 1.0))
            acc["cov2"].append(coverage(result.depth_m, truth, result.sigma_m, 2.0))
        if progress is not None:
            progress()
    report: dict = {"recipe": recipe_name, "count": count, "seed": seed, "size_hw": list(recipe.size_hw),
                    "models": {}, "curves": {}, "reliability": {}, "reference_hohonet_stanford2d3d": HOHONET_STANFORD2D3D}
    for name, acc in per_model.items():
        row = {key: float(np.mean([e[key] for e in acc["errors"]])) for key in acc["errors"][0]}
        pred, sigma, truth = (np.concatenate(acc[k]) for k in ("pred", "sigma", "truth"))
        for metric in ("rmse", "abs_rel"):
            curves = {key: np.mean([c[key] for c in acc[f"curves_{metric}"]], axis=0) for key in ("fractions", "model", "oracle", "random")}
            row[f"ause_{metric}"], row[f"aurg_{metric}"] = ause_aurg(curves)
            report["curves"].setdefault(name, {})[metric] = {k: v.tolist() for k, v in curves.items()}
        row["nll"] = gaussian_nll(pred, truth, np.log(np.maximum(sigma, 1e-9) ** 2))
        row["coverage_1sigma"] = coverage(pred, truth, sigma, 1.0)
        row["coverage_2sigma"] = coverage(pred, truth, sigma, 2.0)
        # Coverage varies from room to room far more than from pixel to pixel: its standard error
        # over panoramas says how far a set of this size can sit from the generator's population.
        for k in (1, 2):
            row[f"coverage_{k}sigma_se"] = float(np.std(acc[f"cov{k}"], ddof=1) / np.sqrt(count)) if count > 1 else float("nan")
        row["latency_median_ms"] = float(np.median(acc["ms"]))
        report["models"][name] = row
        report["reliability"][name] = reliability(pred, truth, sigma)
    return report


def plot_report(report: dict, out_dir: Path) -> list[Path]:
    """Sparsification curves (RMSE, AbsRel; model vs oracle vs random, per model) and the
    reliability diagram, as PNGs in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("rmse", "abs_rel")):
        for index, (name, curves) in enumerate(report["curves"].items()):
            c = curves[metric]
            style = "-" if index == 0 else "--"
            ax.plot(c["fractions"], c["model"], style, label=f"{name}: sigma", color="C0")
            ax.plot(c["fractions"], c["oracle"], style, label=f"{name}: oracle", color="C2")
            ax.plot(c["fractions"], c["random"], style, label=f"{name}: random", color="C3")
        ax.set_xlabel("fraction of pixels removed (most uncertain first)")
        ax.set_ylabel(metric)
        ax.set_title(f"sparsification, {metric} ({report['recipe']}, {report['count']} panoramas)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / f"sparsification_{report['recipe']}.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="ideal")
    for name, rel in report["reliability"].items():
        ax.plot(rel["expected"], rel["observed"], "o-", label=name)
    ax.set_xlabel("expected fraction inside the Gaussian interval")
    ax.set_ylabel("observed fraction")
    ax.set_title(f"sigma reliability ({report['recipe']})")
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / f"reliability_{report['recipe']}.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
