"""The EdgepercRoiWarp TensorRT plugin in ONNX form, its numpy reference, and graph surgery.

A Jetson engine can take the full camera frame and the RoIs and emit network-ready crops without a
host round trip: the ONNX graph carries one ``EdgepercRoiWarp`` node, and TensorRT's ONNX parser,
finding no built-in importer for that op type, looks the plugin up in its registry by

- plugin name      = the node's ``op_type``               (``EdgepercRoiWarp``)
- plugin version   = the node's string attribute ``plugin_version``   (``"1"``)
- plugin namespace = the node's string attribute ``plugin_namespace`` (``"edgeperc"``)

and hands the creator the node's other attributes as plugin fields (ONNX INT -> INT32, FLOAT ->
FLOAT32, FLOATS -> FLOAT32 array; the creator accepts any numeric field type). The parser ignores
the node's domain; the node sits in the ``edgeperc`` domain so that ``onnx.checker`` accepts the
graph and the TensorRT op lint reports it as a plugin rather than an unknown op.

The plugin library (``kernels/plugin``, built with CMake) must be loaded before parsing:
``trt.get_plugin_registry().load_library(path)`` / ``trtexec --dynamicPlugins=path`` for
``libedgeperc_trt_plugin.so``. See docs/plugins.md.

Semantics (plugin, CUDA kernel, host library and :func:`roi_warp_reference` alike): for RoI ``n``
and output pixel ``(ox, oy)``, the row-major 3x3 matrix ``rois[n]`` maps ``(ox, oy, 1)`` to source
pixel coordinates (OpenCV's ``WARP_INVERSE_MAP``); the frame is sampled bilinearly, taps off the
frame read ``pad_value`` (``BORDER_CONSTANT``), and the value is normalised as
``(v * scale - mean[c]) / std[c]`` into ``(N, C, out_h, out_w)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeperc.errors import ConfigError, InvalidInputError
from edgeperc.manifest import (
    Normalisation,
    read_manifest,
    value_info_spec,
    write_manifest,
)

PLUGIN_NAME = "EdgepercRoiWarp"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = "edgeperc"
PLUGIN_DOMAIN = "edgeperc"
PLUGIN_DOMAIN_VERSION = 1
PLUGIN_LIBRARY = "libedgeperc_trt_plugin.so"  # getCreators: IPluginRegistry::loadLibrary, --dynamicPlugins
AUTOREG_LIBRARY = "libedgeperc_trt_plugin_autoreg.so"  # registers on dlopen: --staticPlugins, Polygraphy --plugins
PLUGIN_ENV = "EDGEPERC_TRT_PLUGIN"

MAX_CHANNELS = 4
MAX_ROIS = 65535
MAX_OUTPUT_SIDE = 16384

_FRAME_TYPES = {"uint8": TensorProto.UINT8, "float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT}


@dataclass(frozen=True)
class RoiWarpAttrs:
    """Attributes of one EdgepercRoiWarp node; checked as the C++ creator checks them.

    ``pad_value`` is in source units (0..255 for 8-bit frames) and is normalised like a pixel.
    ``mean``/``std`` hold one value (broadcast) or ``channels`` values. ``max_rois`` bounds the
    RoI count the engine's optimisation profile may allow. ``fp16_output`` makes the crops FP16.
    """

    out_h: int
    out_w: int
    channels: int = 1
    pad_value: float = 0.0
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    max_rois: int = 256
    fp16_output: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        for name in ("out_h", "out_w"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_OUTPUT_SIDE:
                raise ConfigError(f"EdgepercRoiWarp {name} must be an integer in 1..{MAX_OUTPUT_SIDE}, got {value!r}")
        if not isinstance(self.channels, (int, np.integer)) or not 1 <= self.channels <= MAX_CHANNELS:
            raise ConfigError(f"EdgepercRoiWarp channels must be in 1..{MAX_CHANNELS}, got {self.channels!r}")
        if not isinstance(self.max_rois, (int, np.integer)) or not 1 <= self.max_rois <= MAX_ROIS:
            raise ConfigError(f"EdgepercRoiWarp max_rois must be in 1..{MAX_ROIS}, got {self.max_rois!r}")
        for name in ("pad_value", "scale"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"EdgepercRoiWarp {name} must be finite, got {getattr(self, name)!r}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise ConfigError(f"EdgepercRoiWarp {name} must have 1 or {self.channels} values, got {len(values)}")
            if not all(math.isfinite(v) for v in values):
                raise ConfigError(f"EdgepercRoiWarp {name} values must be finite, got {values}")
        if any(v == 0.0 for v in self.std):
            raise ConfigError(f"EdgepercRoiWarp std values must be non-zero, got {self.std}")

    @classmethod
    def from_normalisation(cls, out_h: int, out_w: int, channels: int, normalisation: Normalisation | None,
                           **overrides: object) -> RoiWarpAttrs:
        """Attributes that reproduce a manifest's normalisation (identity when there is none)."""
        fields: dict[str, object] = {"out_h": out_h, "out_w": out_w, "channels": channels}
        if normalisation is not None:
            fields.update(scale=normalisation.scale, mean=tuple(normalisation.mean), std=tuple(normalisation.std))
        else:
            fields.update(scale=1.0, mean=(0.0,), std=(1.0,))
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]

    def node_attributes(self) -> dict[str, object]:
        """ONNX attributes of the node: the plugin fields plus the parser's lookup keys."""
        return {
            "plugin_version": PLUGIN_VERSION,
            "plugin_namespace": PLUGIN_NAMESPACE,
            "out_h": int(self.out_h),
            "out_w": int(self.out_w),
            "channels": int(self.channels),
            "pad_value": float(self.pad_value),
            "scale": float(self.scale),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "max_rois": int(self.max_rois),
            "fp16_output": int(bool(self.fp16_output)),
        }

    @classmethod
    def from_node(cls, node: onnx.NodeProto) -> RoiWarpAttrs:
        """Read the attributes back from an EdgepercRoiWarp node."""
        if node.op_type != PLUGIN_NAME:
            raise ConfigError(f"node {node.name!r} is a {node.op_type}, not {PLUGIN_NAME}")
        values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        known = {k: values[k] for k in ("out_h", "out_w", "channels", "pad_value", "scale", "max_rois") if k in values}
        for key in ("mean", "std"):
            if key in values:
                known[key] = tuple(values[key])
        if "fp16_output" in values:
            known["fp16_output"] = bool(values["fp16_output"])
        return cls(**known)  # type: ignore[arg-type]


def plugin_opset() -> onnx.OperatorSetIdProto:
    """The opset import a graph holding the node needs (``onnx.checker`` asks for it)."""
    return helper.make_opsetid(PLUGIN_DOMAIN, PLUGIN_DOMAIN_VERSION)


def roi_warp_node(frame: str, rois: str, output: str, attrs: RoiWarpAttrs, name: str = "edgeperc_roi_warp") -> onnx.NodeProto:
    """One EdgepercRoiWarp node: frame (H, W, C), rois (N, 9) float32 -> output (N, C, out_h, out_w)."""
    return helper.make_node(PLUGIN_NAME, [frame, rois], [output], name=name, domain=PLUGIN_DOMAIN,
                            **attrs.node_attributes())


def _frame_type(frame_dtype: str) -> int:
    if frame_dtype not in _FRAME_TYPES:
        raise ConfigError(f"frame dtype must be one of {sorted(_FRAME_TYPES)}, got {frame_dtype!r}")
    return _FRAME_TYPES[frame_dtype]


def _frame_nodes(frame_input: str, frame_dtype: str, frame_cast: str | None, prefix: str) -> tuple[list[onnx.NodeProto], str]:
    """(Cast node(s), tensor name feeding the plugin). TensorRT documents UINT8 as unsupported for
    plugin I/O, so an 8-bit frame is cast to FP16 by default (lossless for 0..255) inside the
    engine; ``frame_cast=None`` feeds it as is (only for TensorRT releases that accept it)."""
    _frame_type(frame_dtype)
    if frame_cast is None or frame_cast == frame_dtype:
        return [], frame_input
    if frame_cast not in ("float16", "float32"):
        raise ConfigError(f"frame_cast must be 'float16', 'float32' or None, got {frame_cast!r}")
    cast_out = f"{prefix}frame_{frame_cast}"
    cast = helper.make_node("Cast", [frame_input], [cast_out], name=f"{prefix}frame_cast", to=_FRAME_TYPES[frame_cast])
    return [cast], cast_out


def roi_warp_model(attrs: RoiWarpAttrs, *, frame_dtype: str = "uint8", frame_cast: str | None = "float16",
                   frame_dims: tuple[str | int, str | int] = ("frame_h", "frame_w"), rois_dim: str | int = "num_rois",
                   output: str = "crops", opset: int = 17) -> onnx.ModelProto:
    """A graph that is only the plugin: frame (H, W, C) + rois (N, 9) -> crops (N, C, out_h, out_w).

    For a pre-processing engine of its own, and for checking the plugin in TensorRT.
    """
    nodes, plugin_in = _frame_nodes("frame", frame_dtype, frame_cast, prefix="")
    nodes.append(roi_warp_node(plugin_in, "rois", output, attrs))
    out_type = TensorProto.FLOAT16 if attrs.fp16_output else TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "edgeperc_roi_warp",
        [helper.make_tensor_value_info("frame", _frame_type(frame_dtype), [*frame_dims, attrs.channels]),
         helper.make_tensor_value_info("rois", TensorProto.FLOAT, [rois_dim, 9])],
        [helper.make_tensor_value_info(output, out_type, [rois_dim, attrs.channels, attrs.out_h, attrs.out_w])],
    )
    model = helper.make_model(graph, producer_name="edgeperc", opset_imports=[helper.make_opsetid("", opset), plugin_opset()])
    model.ir_version = 9  # what the ONNX parsers of TensorRT 10.x read
    onnx.checker.check_model(model)
    return model


def _image_input(model: onnx.ModelProto, name: str | None) -> onnx.ValueInfoProto:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if name is not None:
        for info in inputs:
            if info.name == name:
                return info
        raise ConfigError(f"model has no input {name!r}; inputs: {[i.name for i in inputs]}")
    images = [i for i in inputs if len(i.type.tensor_type.shape.dim) == 4]
    if len(images) != 1:
        raise ConfigError(f"cannot tell the image input among {[i.name for i in inputs]}: pass image_input=")
    return images[0]


def prepend_roi_warp(model: onnx.ModelProto, attrs: RoiWarpAttrs | None = None, *, image_input: str | None = None,
                     frame_input: str = "frame", rois_input: str = "rois", frame_dtype: str = "uint8",
                     frame_cast: str | None = "float16", frame_dims: tuple[str | int, str | int] = ("frame_h", "frame_w"),
                     max_rois: int = 256, pad_value: float = 0.0) -> onnx.ModelProto:
    """Put EdgepercRoiWarp in front of ``model``: new inputs frame (H, W, C) + rois (N, 9) feed the
    model's image input (N, C, h, w), which becomes the plugin's output.

    Without ``attrs`` the crop size and channels come from the image input and the normalisation
    from the model's manifest (identity when it has none). The batch dimension of the image input
    becomes the RoI count. An edgeperc manifest, if present, is rewritten: inputs = the new ones,
    normalisation = none (it now happens inside the graph), parent_graph_sha256 = the model's.
    Returns a new model; ``model`` is not changed.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    image = _image_input(result, image_input)
    spec = value_info_spec(image)
    batch, channels, height, width = spec.shape
    if not all(isinstance(v, int) for v in (channels, height, width)):
        raise ConfigError(f"image input {image.name!r} needs static C, H, W for the crops, got {spec.shape}")
    elem_type = image.type.tensor_type.elem_type
    if elem_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        raise ConfigError(f"image input {image.name!r} is {spec.dtype}; the plugin writes float32 or float16")
    manifest = read_manifest(result)
    if attrs is None:
        attrs = RoiWarpAttrs.from_normalisation(height, width, channels, manifest.normalisation if manifest else None,
                                                max_rois=max_rois, pad_value=pad_value,
                                                fp16_output=elem_type == TensorProto.FLOAT16)
    elif (attrs.out_h, attrs.out_w, attrs.channels) != (height, width, channels):
        raise ConfigError(f"attrs give crops {attrs.channels}x{attrs.out_h}x{attrs.out_w} but {image.name!r} "
                          f"takes {channels}x{height}x{width}")
    elif attrs.fp16_output != (elem_type == TensorProto.FLOAT16):
        raise ConfigError(f"attrs.fp16_output={attrs.fp16_output} but {image.name!r} is {spec.dtype}")
    taken = {i.name for i in graph.input} | {o for n in graph.node for o in n.output}
    for new in (frame_input, rois_input):
        if new in taken:
            raise ConfigError(f"tensor name {new!r} is already used in the model")

    nodes, plugin_in = _frame_nodes(frame_input, frame_dtype, frame_cast, prefix="edgeperc_")
    nodes.append(roi_warp_node(plugin_in, rois_input, image.name, attrs))
    new_inputs = [helper.make_tensor_value_info(frame_input, _frame_type(frame_dtype), [*frame_dims, channels]),
                  helper.make_tensor_value_info(rois_input, TensorProto.FLOAT, [batch, 9])]
    kept = [i for i in graph.input if i.name != image.name]
    del graph.input[:]
    graph.input.extend(new_inputs + kept)
    old_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + old_nodes)
    # The parser and shape inference know nothing of the custom op: declare its output, so the
    # rest of the graph still infers.
    image_info = onnx.ValueInfoProto()
    image_info.CopyFrom(image)
    graph.value_info.insert(0, image_info)
    if not any(o.domain == PLUGIN_DOMAIN for o in result.opset_import):
        result.opset_import.append(plugin_opset())
    onnx.checker.check_model(result)

    if manifest is not None:
        initializers = {init.name for init in graph.initializer}
        updated = manifest.model_copy(update={
            "inputs": [value_info_spec(i) for i in graph.input if i.name not in initializers],
            "normalisation": None,
            "layout": "HWC",
            "parent_graph_sha256": manifest.graph_sha256,
        })
        write_manifest(result, updated)
    return result


def quad_to_matrix(quad: np.ndarray | Sequence[Sequence[float]], out_h: int, out_w: int) -> np.ndarray:
    """(9,) float32 RoI matrix mapping output pixel (ox, oy, 1) to the source quad.

    ``quad`` is (4, 2) source pixel coordinates of the crop's corners, clockwise from top-left:
    output (0, 0) lands on quad[0], (out_w - 1, 0) on quad[1], (out_w - 1, out_h - 1) on quad[2].
    """
    import cv2

    src = np.asarray(quad, np.float32).reshape(4, 2)
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], np.float32)
    return cv2.getPerspectiveTransform(dst, src).astype(np.float32).reshape(9)


def roi_warp_reference(frame: np.ndarray, rois: np.ndarray, out_h: int, out_w: int, pad_value: float = 0.0,
                       scale: float = 1.0 / 255.0, mean: Sequence[float] = (0.0,),
                       std: Sequence[float] = (1.0,)) -> np.ndarray:
    """numpy reference of EdgepercRoiWarp, in float32 with the C code's order of operations.

    frame: (H, W) or (H, W, C), any real dtype (values in source units, 0..255 for 8-bit);
    rois: (N, 9) or (N, 3, 3) output->source matrices. Returns (N, C, out_h, out_w) float32.
    """
    img = np.asarray(frame)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1 or not 1 <= img.shape[2] <= MAX_CHANNELS:
        raise InvalidInputError(f"frame must be (H, W) or (H, W, C<={MAX_CHANNELS}) and non-empty, got {np.shape(frame)}")
    mats = np.asarray(rois, np.float32)
    if not ((mats.ndim == 2 and mats.shape[1] == 9) or (mats.ndim == 3 and mats.shape[1:] == (3, 3))):
        raise InvalidInputError(f"rois must be (N, 9) or (N, 3, 3), got {mats.shape}")
    mats = mats.reshape(-1, 9)
    height, width, channels = img.shape
    attrs = RoiWarpAttrs(out_h, out_w, channels, pad_value, scale, tuple(mean), tuple(std), max_rois=MAX_ROIS)
    f32 = np.float32
    src = img.astype(f32)
    pad = f32(attrs.pad_value)
    means = np.broadcast_to(np.asarray(attrs.mean, f32), (channels,))
    inv_std = f32(1.0) / np.broadcast_to(np.asarray(attrs.std, f32), (channels,))
    oy, ox = (a.astype(f32) for a in np.mgrid[0:out_h, 0:out_w])
    out = np.empty((len(mats), channels, out_h, out_w), f32)
    one = f32(1.0)
    for n, m in enumerate(mats):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            w = m[6] * ox + m[7] * oy + m[8]
            sx = (m[0] * ox + m[1] * oy + m[2]) / w
            sy = (m[3] * ox + m[4] * oy + m[5]) / w
            inside = ((np.abs(w) > f32(1e-12)) & (sx > f32(-2.0)) & (sy > f32(-2.0))
                      & (sx < f32(width) + one) & (sy < f32(height) + one))
        sx = np.where(inside, sx, f32(0.0))
        sy = np.where(inside, sy, f32(0.0))
        fx0, fy0 = np.floor(sx), np.floor(sy)
        x0, y0 = fx0.astype(np.int64), fy0.astype(np.int64)
        ax, ay = sx - fx0, sy - fy0
        for c in range(channels):
            taps = []
            for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                xi, yi = x0 + dx, y0 + dy
                ok = (xi >= 0) & (yi >= 0) & (xi < width) & (yi < height)
                taps.append(np.where(ok, src[np.clip(yi, 0, height - 1), np.clip(xi, 0, width - 1), c], pad))
            p0, p1, p2, p3 = taps
            v = (one - ay) * ((one - ax) * p0 + ax * p1) + ay * ((one - ax) * p2 + ax * p3)
            v = np.where(inside, v, pad)
            out[n, c] = (v * f32(attrs.scale) - means[c]) * inv_std[c]
    return out


def find_plugin_library(autoreg: bool = False) -> Path | None:
    """The built plugin library: ``$EDGEPERC_TRT_PLUGIN`` (file or folder), else the checkout's
    CMake build folders (build-plugin/, build/kernels/plugin/, build/). None when not built."""
    name = AUTOREG_LIBRARY if autoreg else PLUGIN_LIBRARY
    env = os.environ.get(PLUGIN_ENV)
    candidates: list[Path] = []
    if env:
        path = Path(env)
        candidates.append(path.parent / name if path.is_file() else path / name)
    root = Path(__file__).resolve().parents[1]
    candidates += [root / "build-plugin" / name, root / "build" / "kernels" / "plugin" / name, root / "build" / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None
