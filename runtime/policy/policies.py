"""What the control loop calls for actions: a policy protocol and an ONNX Runtime-backed policy.

A policy takes one ``PolicyInput`` and returns a (chunk_length, action_dim) chunk: 7 joint deltas
(rad) relative to ``PolicyInput.q_rad`` plus a gripper width (m), row i meant for control step
``step + i``. Any callable object with ``infer`` fits - numpy test policies are real inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
from edgeperc.runtime.backends.base import check_feeds
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from edgeperc.runtime.policy.limits import N_JOINTS

from edgeperc.errors import InvalidInputError, ModelFileError
from edgeperc.preprocess import normalise_images

INPUT_NAMES = ("image", "proprio", "past_actions")


@dataclass(frozen=True)
class PolicyInput:
    """One observation as the policy sees it.

    step: control step of the observation; time_s: its timestamp; q_rad (7,) measured joints;
    gripper_width_m: measured width; image (H, W, 3) uint8 RGB or None; past_actions (K, 8) float32:
    the K executed actions before ``step``, oldest first, each [target - q measured at its step (7),
    width command] (the training layout of edgeperc.models.policy_training.past_action_windows).
    """

    step: int
    time_s: float
    q_rad: np.ndarray
    gripper_width_m: float
    image: np.ndarray | None
    past_actions: np.ndarray


class Policy(Protocol):
    def infer(self, observation: PolicyInput) -> np.ndarray: ...


def _dims(shape: Sequence[int | str]) -> list[int | None]:
    return [d if isinstance(d, int) and d > 0 else None for d in shape]


class OnnxPolicy:
    """An exported policy (inputs ``image`` (B,3,H,W) float, ``proprio`` (B,8), ``past_actions``
    (B,K,8); one output (B, chunk_length, action_dim)) run with ONNX Runtime.

    Refuses at construction, with ModelFileError, a model whose inputs are not these, whose chunk
    length, action dimension or K differ from what the loop is configured for (checked on the
    declared shapes and on one probe inference), or whose image input has no normalisation in its
    manifest (preprocessing comes from the manifest, never from constants here).
    """

    def __init__(
        self,
        model: str | Path | onnx.ModelProto,
        chunk_length: int,
        action_dim: int,
        past_steps: int,
        providers: Sequence[str] | None = ("CPUExecutionProvider",),
        intra_op_threads: int = 1,
    ) -> None:
        self.backend = OnnxRuntimeBackend(model, providers=providers, intra_op_threads=intra_op_threads)
        self.chunk_length, self.action_dim, self.past_steps = chunk_length, action_dim, past_steps
        label = str(model) if not isinstance(model, onnx.ModelProto) else "in-memory policy model"
        specs = {spec.name: spec for spec in self.backend.inputs}
        unknown = sorted(set(specs) - set(INPUT_NAMES))
        if unknown or "proprio" not in specs:
            raise ModelFileError(
                f"{label}: a policy takes inputs {', '.join(INPUT_NAMES)} (proprio required); "
                f"this model takes {', '.join(sorted(specs))}"
            )
        self.specs = specs
        outputs = self.backend.outputs
        named = [o for o in outputs if o.name == "actions"]
        if not named and len(outputs) != 1:
            raise ModelFileError(f"{label}: expected one output or one named 'actions', got {[o.name for o in outputs]}")
        self.output = (named or outputs)[0]
        self._check_shape(label, "declared", _dims(self.output.shape))
        past = specs.get("past_actions")
        if past is not None:
            dims = _dims(past.shape)
            if len(dims) != 3 or dims[1] not in (None, past_steps) or dims[2] not in (None, action_dim):
                raise ModelFileError(
                    f"{label}: input past_actions is {tuple(past.shape)}; the loop feeds (1, {past_steps}, {action_dim}) "
                    f"(set past_steps to the model's K)"
                )
        self.image_hw: tuple[int, int] | None = None
        if "image" in specs:
            dims = _dims(specs["image"].shape)
            if len(dims) != 4 or dims[1] not in (None, 3) or dims[2] is None or dims[3] is None:
                raise ModelFileError(f"{label}: input image must be (B, 3, H, W) with fixed H, W; got {tuple(specs['image'].shape)}")
            self.image_hw = (int(dims[2]), int(dims[3]))
            self.normalisation = self.backend.manifest.normalisation
            if self.normalisation is None:
                raise ModelFileError(f"{label}: the manifest carries no image normalisation; re-export with edgeperc")
        probe = self.infer(
            PolicyInput(
                step=0,
                time_s=0.0,
                q_rad=np.zeros(N_JOINTS),
                gripper_width_m=0.0,
                image=None if self.image_hw is None else np.zeros((*self.image_hw, 3), np.uint8),
                past_actions=np.zeros((past_steps, action_dim), np.float32),
            )
        )
        self._check_shape(label, "probe", [1, *probe.shape])

    def _check_shape(self, label: str, what: str, dims: list[int | None]) -> None:
        want = (self.chunk_length, self.action_dim)
        if len(dims) != 3 or dims[1] not in (None, want[0]) or dims[2] not in (None, want[1]):
            raise ModelFileError(
                f"{label}: {what} output shape {tuple(d if d is not None else '?' for d in dims)} does not fit the "
                f"runtime's (B, chunk_length={want[0]}, action_dim={want[1]})"
            )

    def _cast(self, name: str, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.dtype(self.specs[name].dtype))

    def prepare(self, observation: PolicyInput) -> dict[str, np.ndarray]:
        """One observation -> the model's checked feeds: the Python (GIL-holding) half of ``infer``.
        The inference worker calls it on the loop's thread, so that its own thread only runs
        ``infer_prepared``, during which ONNX Runtime releases the GIL."""
        feeds: dict[str, np.ndarray] = {}
        if "image" in self.specs:
            image = observation.image
            if image is None or np.shape(image)[:2] != self.image_hw:
                got = None if image is None else np.shape(image)
                raise InvalidInputError(f"policy image must be {self.image_hw} x 3 uint8, got {got}")
            feeds["image"] = self._cast("image", normalise_images(np.asarray(image)[None], self.normalisation))
        proprio = np.concatenate([np.asarray(observation.q_rad, np.float64), [observation.gripper_width_m]])
        feeds["proprio"] = self._cast("proprio", proprio[None])
        if "past_actions" in self.specs:
            feeds["past_actions"] = self._cast("past_actions", np.asarray(observation.past_actions)[None])
        return check_feeds(self.backend.inputs, feeds)

    def infer_prepared(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Feeds from ``prepare`` -> (chunk_length, action_dim) float64 chunk: the ONNX Runtime call."""
        out = self.backend.session.run([self.output.name], feeds)[0]
        return np.asarray(out, dtype=np.float64)[0]

    def infer(self, observation: PolicyInput) -> np.ndarray:
        """One observation -> (chunk_length, action_dim) float64 chunk."""
        return self.infer_prepared(self.prepare(observation))
