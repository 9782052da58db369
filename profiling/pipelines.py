"""Which pipelines `edgeperc profile` and `edgeperc latency-test` can run: a small registry.

A pipeline is profiled through an *adapter*: a function ``prepare(target, inputs_dir, options)``
that loads the models and the input data (everything slow, before any timing) and returns a
``PipelineRunner``. The runner declares its stage names and, per iteration, runs the pipeline
once and reports each stage's time through the ``StageTimer`` it is handed (``with
timer.stage(name):`` around a stage, or ``timer.add_ms(name, ms)`` for a time the pipeline
measured itself). The profiler times the whole iteration around ``run`` (end to end).

Adding a pipeline is one registration::

    @register_pipeline("depth", description="Y-Net depth on generated panoramas")
    def prepare_depth(target, inputs_dir, options):
        return DepthRunner(...)          # a PipelineRunner subclass

Names that are known but not runnable yet (``NOT_YET``) give a clear ConfigError saying so;
any other unknown name gives a ConfigError listing the registered ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeperc.errors import BackendUnavailableError, ConfigError, EdgepercError, ModelFileError
from edgeperc.models.shipped import shipped_model
from edgeperc.runtime.imageio import IMAGE_SUFFIXES



@dataclass(frozen=True)
class PrepareOptions:
    """What `profile` / `latency-test` pass to every adapter; adapters ignore what they don't use."""

    model: Path | None = None  # `edgeperc profile model PATH`
    frame_size: int | None = None  # side of generated frames (None: the pipeline's default)
    input_count: int = 3  # generated inputs, cycled through the iterations
    seed: int = 0
    peers: bool = True  # prepare comparison peers (zxing-cpp, the other backend)


class PipelineRunner(ABC):
    """One prepared pipeline. ``run(i, timer)`` processes input ``i % input_count``."""

    stages: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}  # shown in the report: inputs, backend, kernels ...
        self.notes: list[str] = []  # e.g. "TensorRT absent: ..." when a peer could not run

    @property
    @abstractmethod
    def input_count(self) -> int: ...

    @abstractmethod
    def run(self, index: int, timer) -> Any:
        """Run once on input ``index % input_count``, timing each of ``stages`` with ``timer``."""

    def peers(self) -> dict[str, Callable[[int], Any]]:
        """{peer name: call(index)} run on the same input right after ours (interleaved)."""
        return {}

    def outputs_summary(self) -> dict[str, Any]:
        """Anything worth printing about the outputs (e.g. codes decoded by us and by the peer)."""
        return {}

    def close(self) -> None:
        """Release backends."""


PrepareFn = Callable[[Any, "Path | None", PrepareOptions], PipelineRunner]


@dataclass(frozen=True)
class PipelineAdapter:
    name: str
    prepare: PrepareFn
    description: str = ""


# The registry is filled at import time by the registrations at the bottom of this module (and
# by register_pipeline calls elsewhere); it is never changed while a profile runs.
_REGISTRY: dict[str, PipelineAdapter] = {}
NOT_YET: dict[str, str] = {
}


def register_pipeline(name: str, prepare: PrepareFn | None = None, *, description: str = "", replace: bool = False):
    """Register ``prepare`` under ``name``; usable as a decorator. Re-registering a name needs
    ``replace=True`` (a typo must not silently shadow a pipeline)."""

    def add(function: PrepareFn) -> PrepareFn:
        if name in _REGISTRY and not replace:
            raise ValueError(f"pipeline {name!r} is already registered (pass replace=True to override)")
        _REGISTRY[name] = PipelineAdapter(name, function, description)
        NOT_YET.pop(name, None)
        return function

    return add(prepare) if prepare is not None else add


def pipeline_names() -> list[str]:
    return sorted(_REGISTRY)


def not_available_reason(name: str) -> str | None:
    """Why ``name`` cannot be profiled here, or None when it can."""
    if name in _REGISTRY:
        return None
    if name in NOT_YET:
        return NOT_YET[name]
    return f"no profiling adapter is registered for {name!r}"


def get_pipeline(name: str) -> PipelineAdapter:
    """The adapter of ``name``; ConfigError naming the registered pipelines otherwise."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    available = ", ".join(pipeline_names())
    if name in NOT_YET:
        raise ConfigError(f"pipeline {name!r}: {NOT_YET[name]}; available: {available}")
    raise ConfigError(f"unknown pipeline {name!r}; available: {available}")


# --- inputs -------------------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    """Images in ``folder`` (sorted); ConfigError when the folder is missing or holds none."""
    if not folder.is_dir():
        raise ConfigError(f"--inputs {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"--inputs {folder}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


# --- barcode ------------------------------------------------------------------------------------

BARCODE_STAGES = ("proposals", "segmentation", "boxes", "decode")


class BarcodeRunner(PipelineRunner):
    """BarcodeScanner.scan per frame; stage times from ScanResult.latency_ms. Peer: zxing-cpp
    ``read_barcodes`` on the whole frame (what people run today), same frame, right after."""

    stages = BARCODE_STAGES

    def __init__(self, scanner, frames: list[np.ndarray], peers: bool) -> None:
        super().__init__()
        self.scanner, self.frames = scanner, frames
        self._decoded = [0] * len(frames)
        self._peer_decoded = [0] * len(frames)
        self._with_peers = peers
        if peers:
            try:
                import zxingcpp

                self._zxing = zxingcpp
            except ImportError as exc:
                self._with_peers = False
                self.notes.append(f"zxing-cpp peer skipped: {exc}")

    @property
    def input_count(self) -> int:
        return len(self.frames)

    def run(self, index: int, timer) -> Any:
        slot = index % len(self.frames)
        result = self.scanner.scan(self.frames[slot])
        latency = result.latency_ms
        if latency.keys() != set(BARCODE_STAGES):
            raise RuntimeError(f"the scanner reports stages {list(latency)}, the profiler expects {list(BARCODE_STAGES)}")
        for name in BARCODE_STAGES:
            timer.add_ms(name, latency[name])
        self._decoded[slot] = sum(1 for b in result.barcodes if b.text)
        return result

    def _zxing_whole_frame(self, index: int) -> Any:
        slot = index % len(self.frames)
        found = self._zxing.read_barcodes(self.frames[slot])
        self._peer_decoded[slot] = len(found)
        return found

    def peers(self) -> dict[str, Callable[[int], Any]]:
        return {"zxing-cpp (whole frame)": self._zxing_whole_frame} if self._with_peers else {}

    def outputs_summary(self) -> dict[str, Any]:
        out = {"decoded per input (edgeperc)": list(self._decoded)}
        if self._with_peers:
            out["decoded per input (zxing-cpp whole frame)"] = list(self._peer_decoded)
        return out

    def close(self) -> None:
        self.scanner.rpn.close()
        self.scanner.ynet.close()


@register_pipeline("barcode", description="RPN proposals + Y-Net masks + boxes + zxing-cpp decode on UHR frames")
def prepare_barcode(target, inputs_dir: Path | None, options: PrepareOptions) -> BarcodeRunner:
    from edgeperc.runtime.backends.factory import open_backend
    from edgeperc.runtime.pipelines.barcode.pipeline import BarcodeScanner

    if inputs_dir is not None:
        from edgeperc.runtime.imageio import read_gray

        files = list_images(inputs_dir)
        frames = [read_gray(path) for path in files]
        described = f"{len(frames)} image(s) from {inputs_dir}"
    else:
        from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene

        size = options.frame_size or 4096
        if not 256 <= size <= 32768:
            raise ConfigError(f"--frame-size {size}: allowed 256..32768 px")
        rng = np.random.default_rng(options.seed)
        recipe = SceneRecipe(size_hw=(size, size), mean_count=4.0)
        frames = [generate_scene(rng, recipe).image for _ in range(options.input_count)]
        described = f"{len(frames)} generated {size}x{size} scene(s) (SceneRecipe mean_count 4, seed {options.seed})"
    scanner = BarcodeScanner(open_backend(shipped_model("barcode-rpn-w16.onnx"), target),
                             open_backend(shipped_model("ynet-barcode-w8.onnx"), target))
    runner = BarcodeRunner(scanner, frames, options.peers)
    runner.info.update(inputs=described, backend=scanner.ynet.name, kernels=scanner.kernels.name,
                       models="barcode-rpn-w16.onnx + ynet-barcode-w8.onnx (shipped)")
    return runner


# --- bare model ---------------------------------------------------------------------------------

MODEL_STAGES = ("input_checks", "network")


def random_feeds(specs, seed: int) -> dict[str, np.ndarray]:
    """One seeded input per spec; the leading dynamic axis (batch) is 1, other dynamic axes need --inputs."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif axis == 0:
                shape.append(1)
            else:
                raise ConfigError(f"input {spec.name!r} has dynamic axis {axis} ({dim!r}): give --inputs DIR with .npz files holding {spec.name!r}")
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise ConfigError(f"input {spec.name!r} has dtype {spec.dtype}: give --inputs DIR with .npz files")
    return feeds


def load_npz_feeds(folder: Path, specs) -> list[dict[str, np.ndarray]]:
    if not folder.is_dir():
        raise ConfigError(f"--inputs {folder}: not a folder")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise ConfigError(f"--inputs {folder}: no .npz files (one per input set, keyed by input name: {', '.join(s.name for s in specs)})")
    feeds = []
    for path in files:
        try:
            with np.load(path) as data:
                feeds.append({spec.name: data[spec.name] for spec in specs})
        except KeyError as exc:
            raise ConfigError(f"{path}: missing input {exc} (holds the model's inputs by name: {', '.join(s.name for s in specs)})") from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a readable .npz ({exc})") from exc
    return feeds


def _open_model(path: Path, target):
    if not path.is_file():
        raise ModelFileError(f"model not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from edgeperc.runtime.backends.factory import open_backend

        return open_backend(path, target)
    if suffix in (".engine", ".plan", ".trt"):
        from edgeperc.runtime.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path)
    raise ConfigError(f"model {path}: expected a .onnx or .engine file")


class ModelRunner(PipelineRunner):
    """Backend.infer on fixed feeds. ``network`` is the backend's own timing of the runtime call,
    ``input_checks`` the rest of infer (feed validation, contiguity) — the pre/post a bare
    network does not have."""

    stages = MODEL_STAGES

    def __init__(self, backend, feeds: list[dict[str, np.ndarray]], peer_backend=None, peer_name: str = "") -> None:
        super().__init__()
        self.backend, self.feeds = backend, feeds
        self.peer_backend, self.peer_name = peer_backend, peer_name

    @property
    def input_count(self) -> int:
        return len(self.feeds)

    def run(self, index: int, timer) -> Any:
        import time

        start = time.perf_counter_ns()
        out = self.backend.infer(self.feeds[index % len(self.feeds)])
        total_ms = (time.perf_counter_ns() - start) / 1e6
        network_ms = self.backend.last_latency_ms
        timer.add_ms("network", network_ms)
        timer.add_ms("input_checks", max(0.0, total_ms - network_ms))
        return out

    def peers(self) -> dict[str, Callable[[int], Any]]:
        if self.peer_backend is None:
            return {}
        return {self.peer_name: lambda index: self.peer_backend.infer(self.feeds[index % len(self.feeds)])}

    def close(self) -> None:
        self.backend.close()
        if self.peer_backend is not None:
            self.peer_backend.close()


def tensorrt_status() -> str | None:
    """None when TensorRT imports here, else why not."""
    try:
        from edgeperc.runtime.backends.tensorrt_backend import import_tensorrt

        import_tensorrt()
    except BackendUnavailableError as exc:
        return str(exc)
    return None


@register_pipeline("model", description="one ONNX model (ONNX Runtime) or TensorRT engine on fixed inputs")
def prepare_model(target, inputs_dir: Path | None, options: PrepareOptions) -> ModelRunner:
    if options.model is None:
        raise ConfigError("`profile model` needs the model path: edgeperc profile model MODEL.onnx|.engine")
    path = Path(options.model)
    backend = _open_model(path, target)
    feeds = load_npz_feeds(inputs_dir, backend.inputs) if inputs_dir is not None else [random_feeds(backend.inputs, options.seed)]
    peer, peer_name, notes = None, "", []
    if options.peers:
        missing = tensorrt_status()
        if backend.name == "tensorrt" and path.suffix.lower() == ".onnx":
            from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

            peer, peer_name = OnnxRuntimeBackend(path), "onnxruntime (CPU)"
        elif backend.name == "tensorrt":
            notes.append("ONNX Runtime peer skipped: an engine file has no ONNX graph beside it")
        elif missing is not None:
            notes.append(f"TensorRT absent: {missing}")
        else:
            notes.append("TensorRT is installed: pass --target with a TensorRT target (e.g. orin-nx-16gb) to profile the "
                         "engine, with ONNX Runtime beside it")
    runner = ModelRunner(backend, feeds, peer, peer_name)
    runner.notes.extend(notes)
    shapes = ", ".join(f"{name} {tuple(array.shape)} {array.dtype}" for name, array in feeds[0].items())
    runner.info.update(model=str(path), backend=backend.name,
                       inputs=(f"{len(feeds)} .npz set(s) from {inputs_dir}" if inputs_dir is not None
                               else f"seeded random feeds (seed {options.seed}): {shapes}"))
    providers = getattr(backend, "providers", None)
    if providers:
        runner.info["providers"] = ", ".join(providers)
    return runner


# --- depth --------------------------------------------------------------------------------------

DEPTH_STAGES = ("preprocess", "network", "postprocess")


class DepthRunner(PipelineRunner):
    """DepthEstimator.estimate per panorama; stage times from DepthResult.latency_ms."""

    stages = DEPTH_STAGES

    def __init__(self, estimator, panoramas: list[np.ndarray]) -> None:
        super().__init__()
        self.estimator, self.panoramas = estimator, panoramas
        self._nearest = [None] * len(panoramas)

    @property
    def input_count(self) -> int:
        return len(self.panoramas)

    def run(self, index: int, timer) -> Any:
        slot = index % len(self.panoramas)
        result = self.estimator.estimate(self.panoramas[slot])
        for name in DEPTH_STAGES:
            timer.add_ms(name, result.latency_ms[name])
        near = [s["nearest_m"] for s in result.sectors if s["nearest_m"] is not None]
        self._nearest[slot] = round(min(near), 2) if near else None
        return result

    def outputs_summary(self) -> dict[str, Any]:
        return {"nearest obstacle per input (m)": list(self._nearest)}

    def close(self) -> None:
        self.estimator.backend.close()


@register_pipeline("depth", description="Y-Net depth + sigma on equirectangular panoramas, per-sector nearest obstacle")
def prepare_depth(target, inputs_dir: Path | None, options: PrepareOptions) -> DepthRunner:
    from edgeperc.runtime.backends.factory import open_backend
    from edgeperc.runtime.pipelines.depth.pipeline import DepthEstimator

    estimator = DepthEstimator(open_backend(shipped_model("ynet-depth-w8.onnx"), target))
    if inputs_dir is not None:
        from edgeperc.runtime.imageio import read_rgb

        panoramas = [read_rgb(path) for path in list_images(inputs_dir)]
        described = f"{len(panoramas)} panorama(s) from {inputs_dir}"
    else:
        from edgeperc.synth.panoramas import panorama_recipe, render_panorama

        width = options.frame_size or 1024
        if not 64 <= width <= 8192 or width % 2:
            raise ConfigError(f"--frame-size {width}: the panorama width, an even number in 64..8192")
        rng = np.random.default_rng(options.seed)
        recipe = panorama_recipe("default", (width // 2, width))
        panoramas = [render_panorama(rng, recipe).rgb for _ in range(options.input_count)]
        described = f"{len(panoramas)} generated {width // 2}x{width} panorama(s) (seed {options.seed})"
    runner = DepthRunner(estimator, panoramas)
    runner.info.update(inputs=described, backend=estimator.backend.name, kernels=estimator.kernels.name,
                       models="ynet-depth-w8.onnx (shipped)")
    return runner


# --- policy -------------------------------------------------------------------------------------

POLICY_STAGES = ("preprocess", "network", "guard")


class PolicyRunner(PipelineRunner):
    """One 10 Hz control step of the policy runtime: the observation's preprocessing, the ONNX
    Runtime call, and the guard's work for the step (guard_target on the next target, its ramp,
    and the step's 1 kHz limit_tick chain, which the loop computes ahead of the tick thread)."""

    stages = POLICY_STAGES

    def __init__(self, policy, observations: list, limits) -> None:
        super().__init__()
        self.policy, self.observations, self.limits = policy, observations, limits
        self._steps: list[float] = []

    @property
    def input_count(self) -> int:
        return len(self.observations)

    def run(self, index: int, timer) -> Any:
        from edgeperc.runtime.policy.chunks import absolute_targets
        from edgeperc.runtime.policy.guard import GuardedTarget, LimiterState, guard_target, limit_tick
        from edgeperc.runtime.policy.interpolate import ramp, ramp_fractions
        from edgeperc.runtime.policy.limits import DT_S, N_JOINTS

        obs = self.observations[index % len(self.observations)]
        with timer.stage("preprocess"):
            feeds = self.policy.prepare(obs)
        with timer.stage("network"):
            chunk = self.policy.infer_prepared(feeds)
        with timer.stage("guard"):
            target = absolute_targets(chunk, obs.q_rad)[1]
            last = GuardedTarget.hold(obs.q_rad, obs.gripper_width_m)
            guarded, _ = guard_target(target[:N_JOINTS], last, obs.q_rad, self.limits, gripper_width_m=float(target[N_JOINTS]))
            refs = ramp(obs.q_rad, guarded.q_rad, ramp_fractions(round(0.1 / DT_S), "linear"))
            velocity = np.diff(refs, axis=0, prepend=obs.q_rad[None]) / DT_S
            state = LimiterState.at_rest(obs.q_rad)
            for ref, v in zip(refs, velocity):
                _, state, _ = limit_tick(state, ref, self.limits, v)
        self._steps.append(float(np.abs(guarded.q_rad - obs.q_rad).max()))
        return chunk

    def outputs_summary(self) -> dict[str, Any]:
        steps = np.array(self._steps) if self._steps else np.zeros(1)
        return {"largest joint step per target (rad), median / max": [round(float(np.median(steps)), 4), round(float(steps.max()), 4)]}

    def close(self) -> None:
        self.policy.backend.close()


@register_pipeline("policy", description="rpt-policy chunk inference + the guard's per-step work (10 Hz step of the Franka runtime)")
def prepare_policy(target, inputs_dir: Path | None, options: PrepareOptions) -> PolicyRunner:
    from edgeperc.runtime.policy.adversaries import READY
    from edgeperc.runtime.policy.limits import load_panda_limits
    from edgeperc.runtime.policy.policies import OnnxPolicy, PolicyInput

    if inputs_dir is not None:
        raise ConfigError("--inputs: the policy pipeline generates its observations (camera frames, joint states)")
    path = options.model or shipped_model("rpt-policy-pick.onnx")
    policy = OnnxPolicy(path, 16, 8, 2)
    rng = np.random.default_rng(options.seed)
    hw = policy.image_hw or (96, 96)
    observations = [
        PolicyInput(step=i, time_s=0.1 * i, q_rad=READY + rng.normal(0.0, 0.05, 7), gripper_width_m=0.08,
                    image=rng.integers(0, 256, (*hw, 3), dtype=np.uint8), past_actions=np.zeros((2, 8), np.float32))
        for i in range(options.input_count)
    ]
    runner = PolicyRunner(policy, observations, load_panda_limits())
    runner.info.update(inputs=f"{len(observations)} generated observations (seed {options.seed}), {hw[0]}x{hw[1]} camera",
                       backend="onnxruntime CPU (1 intra-op thread)", models=f"{Path(path).name}")
    return runner


# --- lisat ---------------------------------------------------------------------------------------

LISAT_STAGES = ("vision", "mask_encoder", "language", "mask")


class LisatRunner(PipelineRunner):
    """One image-query pair of the LISAt runtime, uncached: both encoders, the prompt's prefill and
    greedy decode with the KV cache until <SEG>, then the seg projector and mask decoder. The peer
    is the other precision's whole answer on the same pair (FP32 <-> compressed) when it exists."""

    stages = LISAT_STAGES

    def __init__(self, pipeline, pairs: list, peer=None) -> None:
        super().__init__()
        self.pipeline, self.pairs, self.peer = pipeline, pairs, peer
        self._seg = 0
        self._runs = 0

    @property
    def input_count(self) -> int:
        return len(self.pairs)

    def run(self, index: int, timer) -> Any:
        from edgeperc.models.lisat_preprocess import preprocess_clip, preprocess_sam
        from edgeperc.runtime.pipelines.lisat.decode import greedy_decode_graphs

        image, query = self.pairs[index % len(self.pairs)]
        p = self.pipeline
        m, r = p.manifest, p.runners
        with timer.stage("vision"):
            tokens = r["vision"].infer({"images_clip": preprocess_clip(image, int(m.clip.size[0]))[None]})["image_tokens"]
        with timer.stage("mask_encoder"):
            embeddings = r["mask_encoder"].infer({"images_sam": preprocess_sam(image, int(m.sam.size[0]))[None]})["image_embeddings"]
        with timer.stage("language"):
            ids, _ = p.prompt_ids(query)
            result = greedy_decode_graphs(r, m, ids, tokens, p.max_new_tokens)
        with timer.stage("mask"):
            logits = None
            if result.seg_hidden is not None:
                seg = r["seg_projector"].infer({"hidden": result.seg_hidden})["seg_embedding"]
                logits = r["mask_decoder"].infer({"image_embeddings": embeddings, "seg_embedding": seg})["mask_logits"]
        self._runs += 1
        self._seg += logits is not None
        return logits

    def peers(self) -> dict[str, Callable[[int], Any]]:
        if self.peer is None:
            return {}
        name, other = self.peer

        def run(index: int) -> Any:
            image, query = self.pairs[index % len(self.pairs)]
            other._features.clear()  # uncached, like ours
            return other.answer(image, query)

        return {name: run}

    def outputs_summary(self) -> dict[str, Any]:
        return {"answers with <SEG> (a mask)": f"{self._seg}/{self._runs}"}


@register_pipeline("lisat", description="LISAt image + query -> mask: vision, mask encoder, LLM prefill + KV-cache decode, mask decoder")
def prepare_lisat(target, inputs_dir: Path | None, options: PrepareOptions) -> LisatRunner:
    from edgeperc.cli_lisat import open_lisat
    from edgeperc.lisat_exports import is_export_folder
    from edgeperc.evaluation.lisat import held_out_queries

    if inputs_dir is not None:
        raise ConfigError("--inputs: the lisat pipeline generates its aerial scenes and queries")
    pipeline = open_lisat(options.model, "fp32", target, None, 24, progress=False)
    size = options.frame_size or int(pipeline.manifest.sam.size[0])
    scenes = held_out_queries(max(1, options.input_count), 1, size, options.seed + 9000)
    pairs = [(image, queries[0].text) for image, queries in scenes if queries]
    peer, note = None, None
    if options.peers and (options.model is None or not is_export_folder(options.model)):
        try:
            peer = ("compressed", open_lisat(options.model, "compressed", target, None, 24, progress=False))
        except EdgepercError as exc:  # the profile still runs without its peer, and says why
            note = f"compressed peer unavailable: {exc}"
    runner = LisatRunner(pipeline, pairs, peer)
    if note:
        runner.notes.append(note)
    precision = ", ".join(f"{k} {v}" for k, v in pipeline.precision.items())
    runner.info.update(inputs=f"{len(pairs)} generated aerial scenes of {size}x{size} px, one query each (seed {options.seed + 9000})",
                       backend="onnxruntime CPU", models=str(pipeline.folder), precision=precision)
    return runner
