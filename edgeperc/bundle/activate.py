"""First boot of a staged release (`edgeperc bundle activate`, run by the systemd unit): verify
the current release again, build its TensorRT engines into the engine cache for the GPU present,
run the latency test on its models against the target's budgets and the bundle's baseline, and
only then mark it good. Any failure rolls ``current`` back to the previous good release and the
state file records why. Where TensorRT is absent the ONNX Runtime path runs, and says so."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeperc.bundle.elf import host_machine
from edgeperc.bundle.latency import baseline_document, latency_checks, measure, open_onnxruntime
from edgeperc.bundle.layout import Layout, add_event, good_releases, load_state, locked, save_state, switch_symlink, utc_now, write_atomic
from edgeperc.bundle.manifest import MANIFEST_NAME, BundleManifest, LatencySettings
from edgeperc.bundle.signing import load_public_key
from edgeperc.bundle.verify import VerifiedBundle, verify_release
from edgeperc.errors import BackendUnavailableError, BundleError, ConfigError, EdgepercError


@dataclass
class ActivationResult:
    version: str
    status: str  # "good" | "already-good" | "rolled-back" | "failed"
    reason: str | None = None
    rolled_back_to: str | None = None
    engine_path: str = ""  # how the models ran: TensorRT engines or the ONNX Runtime path, and why
    checks: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("good", "already-good")


def _signer_of(release: Path) -> str | None:
    try:
        return json.loads((release / MANIFEST_NAME).read_bytes())["signer"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def trusted_key(layout: Layout, release: Path, given=None):
    """The key given, else the one stage stored for the release's signer under etc/edgeperc/bundle-keys/."""
    if given is not None:
        return given
    signer = _signer_of(release)
    if signer is None:
        raise BundleError(f"release {release.name}: bundle.json is missing or unreadable")
    path = layout.keys / f"{signer.split(':', 1)[-1]}.pub"
    if not path.is_file():
        raise BundleError(f"release {release.name} was signed by {signer}, which has no trusted key in {layout.keys}")
    return load_public_key(path)


def _open_backends(verified: VerifiedBundle, release: Path, engine_cache: Path, notes: list[str]):
    """(how the models run, {model path: opener}): TensorRT engines when TensorRT is here, else ONNX Runtime."""
    manifest, target = verified.manifest, verified.target
    if target.backend != "tensorrt":
        return "ONNX Runtime (the target's backend): no engines to build", lambda path: open_onnxruntime(path, target, notes)
    try:
        from edgeperc.runtime.backends.tensorrt_backend import import_tensorrt

        import_tensorrt()
    except BackendUnavailableError as exc:
        return (f"TensorRT absent here ({str(exc).split(' (')[0]}): no engines built; the ONNX Runtime path ran instead",
                lambda path: open_onnxruntime(path, target, notes))
    from edgeperc.export.engine_build import build_engine, gpu_identity, plan_build, probe_cuda_device
    from edgeperc.runtime.backends.tensorrt_backend import TensorRTBackend

    name, capability, sms = probe_cuda_device()
    if target.gpu is not None and (capability != target.gpu.compute_capability or name != target.gpu.name
                                   or (target.gpu.multiprocessors and sms != target.gpu.multiprocessors)):
        raise ConfigError(f"this device's GPU is {gpu_identity(name, sms)}, sm {capability}; the release is for target "
                          f"{target.name} ({gpu_identity(target.gpu.name, target.gpu.multiprocessors)}, sm {target.gpu.compute_capability})")
    plugin = next((release / lib.path for lib in manifest.libraries if lib.kind == "trt-plugin" and lib.included), None)
    engines: dict[Path, tuple[Path, Path | None]] = {}
    for model in manifest.models:
        onnx_path = release / model.path
        plan = plan_build(onnx_path, target, precision=model.engine_precision, cache_dir=engine_cache, plugin_library=None)
        engines[onnx_path.resolve()] = (build_engine(plan), plan.plugin_library)
    if plugin is not None:
        notes.append(f"plugin library {plugin.name} shipped; engines of the shipped models do not use it")
    return (f"TensorRT engines built into {engine_cache} for {gpu_identity(name, sms)} (sm {capability})",
            lambda path: TensorRTBackend(engines[Path(path).resolve()][0], plugin_library=engines[Path(path).resolve()][1]))


def _run_checks(verified: VerifiedBundle, release: Path, layout: Layout, engine_cache: Path, settings: LatencySettings,
                result: ActivationResult, progress) -> None:
    """Engines + latency test; raises on failure (the caller rolls back)."""
    manifest = verified.manifest
    started = time.perf_counter()
    how, opener = _open_backends(verified, release, engine_cache, result.notes)
    result.engine_path = how
    result.seconds["engines"] = time.perf_counter() - started
    pipelines: dict[str, dict[str, Path]] = {}
    for model in manifest.models:
        pipelines.setdefault(model.pipeline, {})[model.role] = release / model.path
    host_lib = next((lib for lib in manifest.libraries if lib.kind == "kernels-host" and lib.included), None)
    saved = os.environ.get("EDGEPERC_KERNELS_LIB")
    if host_lib is not None and host_lib.elf_machine == host_machine() and saved is None:
        os.environ["EDGEPERC_KERNELS_LIB"] = str(release / "lib")  # the release's own kernels (a fresh process reads it)
    started = time.perf_counter()
    try:
        measured = measure(pipelines, settings, opener, progress)
    finally:
        if saved is None:
            os.environ.pop("EDGEPERC_KERNELS_LIB", None)
    result.seconds["latency"] = time.perf_counter() - started
    baseline = release / manifest.baseline.path if manifest.baseline.path else None
    checks = latency_checks(verified.target, measured, baseline, settings.tolerance)
    result.checks = checks
    if manifest.baseline.status == "first-boot":
        write_atomic(layout.baselines / f"{manifest.version}.json",
                     (json.dumps(baseline_document(verified.target.name, measured, settings), indent=1) + "\n").encode())
        result.notes.append(f"first-boot baseline written to {layout.baselines / (manifest.version + '.json')}")
    failed = [check for check in checks if not check.passed]
    if failed:
        raise BundleError("latency test failed: " + "; ".join(check.message() for check in failed[:4])
                          + (f" (+{len(failed) - 4} more)" if len(failed) > 4 else ""))


def _roll_back(layout: Layout, state: dict, failed: str, reason: str, given_key, result: ActivationResult) -> None:
    info = state["releases"].setdefault(failed, {})
    info.update({"status": "failed", "reason": reason, "failed_utc": utc_now()})
    add_event(state, "activation-failed", failed, reason)
    for candidate in good_releases(state, layout, exclude=failed):
        release = layout.release(candidate)
        try:
            verify_release(release, trusted_key(layout, release, given_key))
        except EdgepercError as exc:  # a damaged previous release is not a place to go back to
            state["releases"][candidate].update({"status": "failed", "reason": f"re-verification failed: {exc}"})
            add_event(state, "rollback-candidate-refused", candidate, str(exc))
            continue
        switch_symlink(layout.current, f"releases/{candidate}")
        add_event(state, "rolled-back", candidate, f"current switched from {failed} back to {candidate}")
        result.rolled_back_to = candidate
        break
    else:
        add_event(state, "no-rollback", failed, "no previous good release: current still points at the failed release")
    result.status = "rolled-back" if result.rolled_back_to else "failed"
    result.reason = reason
    save_state(layout, state)


def activate_release(root: str | Path = "/", public_key=None, engine_cache: str | Path | None = None,
                     iterations: int | None = None, warmup: int | None = None, tolerance: float | None = None,
                     input_count: int | None = None, frame_size: dict[str, int] | None = None, force: bool = False,
                     progress=None) -> ActivationResult:
    """Activate ``root``'s current release (see the module docstring). Never raises for a failed
    activation: the result says ``rolled-back``/``failed`` with the reason (the CLI exits 10)."""
    layout = Layout(root)
    engine_cache = Path(engine_cache) if engine_cache is not None else layout.engine_cache
    if layout.current_version() is None:  # before the lock: nothing is created under a root with no release
        raise BundleError(f"no current release under {layout.base} (stage a bundle first)")
    with locked(layout):
        version = layout.current_version()
        if version is None:
            raise BundleError(f"no current release under {layout.base} (stage a bundle first)")
        state = load_state(layout)
        info = state["releases"].setdefault(version, {"status": "staged"})
        result = ActivationResult(version, "good")
        release = layout.release(version)
        started = time.perf_counter()
        try:
            key = trusted_key(layout, release, public_key)
            verified = verify_release(release, key)
            result.seconds["verify"] = time.perf_counter() - started
            if info.get("status") == "good" and not force:
                result.status = "already-good"
                result.notes.append("already marked good: re-verified only (--force runs engines and the latency test again)")
                return result
            manifest: BundleManifest = verified.manifest
            base = manifest.baseline.settings
            settings = base.model_copy(update={k: v for k, v in {
                "iterations": iterations, "warmup": warmup, "tolerance": tolerance, "input_count": input_count,
                "frame_size": {**base.frame_size, **frame_size} if frame_size else None}.items() if v is not None})
            _run_checks(verified, release, layout, engine_cache, settings, result, progress)
        except EdgepercError as exc:
            _roll_back(layout, state, version, str(exc), public_key, result)
            return result
        except Exception as exc:  # a bug or a library error must not leave an unverified release current
            _roll_back(layout, state, version, f"{type(exc).__name__}: {exc}", public_key, result)
            return result
        info.update({"status": "good", "reason": None, "activated_utc": utc_now(), "ran_on": result.engine_path,
                     "checks": len(result.checks), "notes": result.notes})
        add_event(state, "activated", version, f"{result.engine_path}; {len(result.checks)} latency checks passed")
        save_state(layout, state)
        return result
