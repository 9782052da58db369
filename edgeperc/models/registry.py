"""Model families: name -> architecture, typed config, example inputs, preprocessing, evaluator.

Importing this module does not import torch: the runtime uses a family's normalisation,
generator and evaluator without PyTorch; only ``build`` needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from pydantic import BaseModel, ValidationError

from edgeperc.errors import ConfigError
from edgeperc.manifest import Normalisation
from edgeperc.models import metrics
from edgeperc.models.policy_config import PolicyConfig
from edgeperc.models.rpn_config import BarcodeRPNConfig
from edgeperc.models.ynet_config import YNetConfig
from edgeperc.preprocess import normalise_images

Targets = np.ndarray
Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Family:
    name: str
    version: str
    description: str
    config_cls: type[BaseModel]
    defaults: dict[str, Any]
    input_names: tuple[str, ...]
    output_names: Callable[[BaseModel], tuple[str, ...]]
    normalisation: Normalisation
    build: Callable[[BaseModel], Any]
    generate: Callable[[BaseModel, int, int], tuple[np.ndarray, Targets]]
    evaluate: Callable[[BaseModel, Outputs, Targets], dict[str, float]]
    primary_metric: str
    higher_is_better: bool = True
    dynamic_batch: bool = True
    atol: float = 1e-4
    rtol: float = 1e-3
    width_presets: dict[str, int] = field(default_factory=dict)
    # Families with several inputs (rpt-policy) make their own feeds; None: normalised generator images.
    make_inputs: Callable[[BaseModel, int, int], dict[str, np.ndarray]] | None = None

    def make_config(self, overrides: dict[str, Any] | None = None) -> BaseModel:
        """Validated config from the family defaults plus ``overrides``; errors name the field."""
        values = {**self.defaults, **(overrides or {})}
        try:
            return self.config_cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid {self.name} config: {problems}") from exc

    def example_inputs(self, config: BaseModel, batch: int, seed: int) -> dict[str, np.ndarray]:
        """Normalised model inputs from the family generator, deterministic per seed."""
        if self.make_inputs is not None:
            return self.make_inputs(config, batch, seed)
        pixels, _ = self.generate(config, batch, seed)
        return {self.input_names[0]: normalise_images(pixels, self.normalisation)}


def _build_ynet(config: BaseModel) -> Any:
    from edgeperc.models.ynet import YNet

    return YNet(config)


def _build_rpn(config: BaseModel) -> Any:
    from edgeperc.models.rpn import BarcodeRPN

    return BarcodeRPN(config)


def _build_policy(config: BaseModel) -> Any:
    from edgeperc.models.policy import RPTPolicy

    return RPTPolicy(config)


def _policy_inputs(config: BaseModel, batch: int, seed: int) -> dict[str, np.ndarray]:
    from edgeperc.models.policy_training import example_policy_inputs

    return example_policy_inputs(config, batch, seed)


def _generate_policy(config: BaseModel, count: int, seed: int) -> tuple[np.ndarray, Targets]:
    """Expert pick demos in MuJoCo: (images, samples with proprio, past actions and chunk targets)."""
    from edgeperc.models.policy_training import generate_policy_samples

    return generate_policy_samples(config, count, seed)


def _evaluate_policy(config: BaseModel, outputs: Outputs, truth: Targets) -> dict[str, float]:
    from edgeperc.models.policy_training import evaluate_chunks

    return evaluate_chunks(config, outputs["actions"], truth)


def _generate_barcodes(config: BaseModel, count: int, seed: int) -> tuple[np.ndarray, Targets]:
    from edgeperc.synth.barcode_samples import ynet_crops

    return ynet_crops(count, seed, tuple(config.input_hw))


def _generate_rpn(config: BaseModel, count: int, seed: int) -> tuple[np.ndarray, Targets]:
    from edgeperc.synth.barcode_samples import rpn_samples

    return rpn_samples(count, seed, lr_px=config.input_hw[0])


def _generate_panoramas(config: BaseModel, count: int, seed: int) -> tuple[np.ndarray, Targets]:
    """Ray-marched SDF rooms (edgeperc.synth.panoramas): RGB and the sensor-like depth truth,
    NaN where the truth is invalid (the loss and the metrics skip those pixels)."""
    from edgeperc.synth.panoramas import panorama_recipe, render_panorama

    rng = np.random.default_rng(seed)
    recipe = panorama_recipe("default", tuple(config.input_hw))
    rgb, truth = [], []
    for _ in range(count):
        pano = render_panorama(rng, recipe)
        rgb.append(pano.rgb)
        truth.append(np.where(pano.valid, pano.depth, np.nan).astype(np.float32))
    return np.stack(rgb), np.stack(truth)


def _evaluate_masks(config: BaseModel, outputs: Outputs, truth: Targets) -> dict[str, float]:
    return {"mask_iou": metrics.mask_iou(outputs["mask"], truth)}


def _evaluate_rpn(config: BaseModel, outputs: Outputs, truth: Targets) -> dict[str, float]:
    from edgeperc.runtime.pipelines.barcode.proposals import make_anchors, propose_regions

    grid = outputs["objectness"].shape[2:]
    anchors = make_anchors(grid, config.stride_px, config.anchor_sizes_px, config.anchor_ratios)
    # The scanner's settings: score 0.3, boxes widened by 4 low-res pixels before crops are cut.
    proposals = [propose_regions(o, d, anchors, tuple(config.input_hw), 0.3, grow_px=4.0)[0]
                 for o, d in zip(outputs["objectness"], outputs["deltas"])]
    return {"proposal_recall": metrics.box_recall(proposals, list(truth)),
            "proposals_per_image": float(np.mean([len(p) for p in proposals]))}


def _evaluate_depth(config: BaseModel, outputs: Outputs, truth: Targets) -> dict[str, float]:
    from edgeperc.evaluation.depth_metrics import coverage, depth_errors

    errors = depth_errors(outputs["depth"][:, 0], truth)
    sigma = np.exp(0.5 * outputs["log_var"][:, 0])
    return {"delta1": errors["delta1"], "abs_rel": errors["abs_rel"],
            "coverage_1sigma": coverage(outputs["depth"][:, 0], truth, sigma, 1.0)}


def _heads(config: BaseModel) -> tuple[str, ...]:
    return tuple(config.heads)


def _rpn_outputs(config: BaseModel) -> tuple[str, ...]:
    return ("objectness", "deltas")


def _policy_outputs(config: BaseModel) -> tuple[str, ...]:
    return ("actions",)


def _families() -> dict[str, Family]:
    ynet_config = YNetConfig
    return {
        "ynet-barcode": Family(
            name="ynet-barcode",
            version="1.0",
            description="Y-Net barcode segmentation on 400x400 grey crops of UHR frames (dissertation ch. 3)",
            config_cls=ynet_config,
            defaults={"in_channels": 1, "input_hw": (400, 400), "heads": ["mask"]},
            input_names=("image",),
            output_names=_heads,
            normalisation=Normalisation(scale=1 / 255, mean=[0.5], std=[0.5], color="gray"),
            build=_build_ynet,
            generate=_generate_barcodes,
            evaluate=_evaluate_masks,
            primary_metric="mask_iou",
            width_presets={"paper": 64, "small": 8},
        ),
        "barcode-rpn": Family(
            name="barcode-rpn",
            version="1.0",
            description="Modified RPN proposing barcode regions on a 256x256 copy of a UHR frame (ch. 3)",
            config_cls=BarcodeRPNConfig,
            defaults={},
            input_names=("image",),
            output_names=_rpn_outputs,
            normalisation=Normalisation(scale=1 / 255, mean=[0.5], std=[0.5], color="gray"),
            build=_build_rpn,
            generate=_generate_rpn,
            evaluate=_evaluate_rpn,
            primary_metric="proposal_recall",
            width_presets={"small": 16},
        ),
        "ynet-depth": Family(
            name="ynet-depth",
            version="1.0",
            description="Y-Net depth + aleatoric log-variance on 256x512 equirectangular RGB (App. B)",
            config_cls=ynet_config,
            defaults={"in_channels": 3, "input_hw": (256, 512), "heads": ["depth", "log_var"], "wrap_longitude": True},
            input_names=("image",),
            output_names=_heads,
            normalisation=Normalisation(
                scale=1 / 255, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], color="rgb"
            ),
            build=_build_ynet,
            generate=_generate_panoramas,
            evaluate=_evaluate_depth,
            primary_metric="delta1",
            width_presets={"paper": 64, "small": 8},
        ),
        "rpt-policy": Family(
            name="rpt-policy",
            version="1.0",
            description="RPT-style transformer: camera/proprio/past-action tokens -> 16x8 action chunk (ch. 4)",
            config_cls=PolicyConfig,
            defaults={},
            input_names=("image", "proprio", "past_actions"),
            output_names=_policy_outputs,
            normalisation=Normalisation(scale=1 / 255, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], color="rgb"),
            build=_build_policy,
            generate=_generate_policy,
            evaluate=_evaluate_policy,
            primary_metric="joint_l1_rad",
            higher_is_better=False,
            make_inputs=_policy_inputs,
        ),
    }


def family_names() -> list[str]:
    return sorted(_families())


ALIASES = {"barcode-ynet": "ynet-barcode", "depth-ynet": "ynet-depth", "depth": "ynet-depth", "policy": "rpt-policy"}  # issue wording: `edgeperc train depth|policy`


def get_family(name: str) -> Family:
    families = _families()
    name = ALIASES.get(name, name)
    if name not in families:
        raise ConfigError(f"unknown model family '{name}'; registered: {', '.join(sorted(families))}")
    return families[name]
