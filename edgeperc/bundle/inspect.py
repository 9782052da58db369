"""What is inside a bundle, for which target, signed by whom: read from the archive without
writing anything. The signature is checked only when a public key is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeperc.bundle.archive import scan_archive
from edgeperc.bundle.manifest import RESERVED, parse_manifest


def inspect_bundle(path: str | Path, public_key=None, target=None) -> dict[str, Any]:
    """A JSON-ready description. With ``public_key`` the full verification runs and its outcome is
    reported under ``verification`` (refusals are reported, not raised)."""
    from edgeperc.bundle.verify import verify_scan
    from edgeperc.errors import BundleError

    scan = scan_archive(path, keep=lambda name: name.startswith("target/") and name.endswith((".yaml", ".yml")))
    if scan.manifest_bytes is None:
        return {"bundle": str(path), "error": "no bundle.json in the archive", "members": sorted(scan.members)}
    manifest = parse_manifest(scan.manifest_bytes)
    listed = {entry.path for entry in manifest.files}
    extra = sorted(name for name in scan.members if name not in listed and name not in RESERVED)
    verification: dict[str, Any] = {"checked": False, "reason": "no public key given (--key PUB verifies)"}
    if public_key is not None:
        try:
            verify_scan(scan, public_key, target, Path(path).name)
            verification = {"checked": True, "ok": True}
        except BundleError as exc:
            verification = {"checked": True, "ok": False, "error": type(exc).__name__, "message": str(exc)}
    return {
        "bundle": str(path),
        "archive": {"bytes": scan.archive_bytes, "sha256": scan.archive_sha256, "gzip": scan.compressed},
        "name": manifest.name, "version": manifest.version, "created_utc": manifest.created_utc,
        "created_on": manifest.created_on,
        "target": manifest.target.model_dump(mode="json"),
        "runtime": manifest.runtime.model_dump(mode="json"),
        "signer": manifest.signer.model_dump(mode="json"),
        "pipelines": manifest.pipelines,
        "models": [m.model_dump(mode="json") for m in manifest.models],
        "libraries": [lib.model_dump(mode="json") for lib in manifest.libraries],
        "baseline": manifest.baseline.model_dump(mode="json"),
        "files": [entry.model_dump(mode="json") for entry in manifest.files],
        "total_bytes": manifest.total_bytes,
        "unlisted_members": extra,
        "notes": manifest.notes,
        "verification": verification,
    }


def format_inspection(data: dict[str, Any]) -> list[str]:
    """Plain lines for the terminal."""
    if "error" in data:
        return [f"{data['bundle']}: {data['error']}"]
    target, runtime = data["target"], data["runtime"]
    lines = [
        f"bundle      {data['bundle']}  ({data['archive']['bytes'] / 2**20:.2f} MiB{', gzip' if data['archive']['gzip'] else ''}, "
        f"sha256 {data['archive']['sha256'][:16]}…)",
        f"release     {data['name']} {data['version']}  created {data['created_utc']} on {data['created_on'].get('machine', '?')}",
        f"target      {target['name']}  backend {target['backend']}, arch {target['arch']}"
        + (f", sm_{target['gpu_sm']}" if target.get("gpu_sm") else "")
        + (f", TensorRT {target['tensorrt_version']}" if target.get("tensorrt_version") else "")
        + f", precision {target['default_precision']}, storage budget {target['storage_budget_mib']} MiB",
        f"runtime     edgeperc {runtime['edgeperc']}, kernels ABI {runtime['kernels_abi']}, python {runtime['python']}, "
        f"onnxruntime {runtime.get('onnxruntime')}",
        f"signer      {data['signer']['algorithm']} {data['signer']['fingerprint']}",
        f"pipelines   {', '.join(data['pipelines'])}",
    ]
    for model in data["models"]:
        lines.append(f"  model     {model['pipeline']}/{model['role']}: {model['path']} (ONNX {model['onnx_precision']}, "
                     f"engine {model['engine_precision']}, family {model['family']})")
    for lib in data["libraries"]:
        sm = f", SASS {', '.join(f'sm_{s}' for s in lib['sass_sm'])}" if lib["sass_sm"] else ""
        abi = f", ABI {lib['abi']}" if lib.get("abi") is not None else ""
        state = f"included as {lib['path']}" if lib["included"] else "NOT included"
        lines.append(f"  library   {lib['name']}: {state} (ELF {lib.get('elf_machine') or '-'}{sm}{abi})"
                     + (f" — {lib['note']}" if lib["note"] else ""))
    baseline = data["baseline"]
    lines.append(f"baseline    {baseline['status']}" + (f" ({baseline['path']})" if baseline.get("path") else "")
                 + (f": {baseline['note']}" if baseline.get("note") else ""))
    lines.append(f"files       {len(data['files'])}, {data['total_bytes'] / 2**20:.2f} MiB")
    for entry in data["files"]:
        lines.append(f"  {entry['size']:>10}  {entry['sha256'][:16]}…  {entry['role']:<14} {entry['path']}")
    if data["unlisted_members"]:
        lines.append(f"UNLISTED    {', '.join(data['unlisted_members'])} (verification refuses this bundle)")
    for note in data["notes"]:
        lines.append(f"note        {note}")
    verification = data["verification"]
    if not verification["checked"]:
        lines.append(f"signature   not checked: {verification['reason']}")
    elif verification["ok"]:
        lines.append("verified    signature, every file's sha256, target, runtime, storage budget: OK")
    else:
        lines.append(f"REFUSED     {verification['error']}: {verification['message']}")
    return lines


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1)
