"""CUDA kernels on a GPU vs OpenCV on the CPU vs a one-pass memory read (the physical floor).

Runs as is where a GPU is lent, from the repository root, with the CUDA library built (cmake) or
carried in build/:

    python benchmarks/gpu_kernels.py [--runs 30] [--out DIR] [--write-docs]

Needs neither cuda-python nor CuPy (a lent machine may have neither and no network): device
buffers go through the library's own helpers, and each figure is wall-clock around launch +
cudaDeviceSynchronize (what a pipeline waits for), median of --runs. Outputs are checked against
OpenCV / the numpy references on the same inputs. Without a usable GPU it says why and exits 0,
writing nothing.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from ctypes import c_int32, c_int64, c_void_p
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NORM = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class Device:
    """Device buffers and synchronous timing through libedgeperc_kernels_cuda's helpers."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.ep_cuda_malloc.argtypes = [ctypes.POINTER(c_void_p), c_int64]
        lib.ep_cuda_free.argtypes = [c_void_p]
        lib.ep_cuda_memcpy.argtypes = [c_void_p, c_void_p, c_int64, c_int32]
        lib.ep_cuda_sum_bytes.argtypes = [c_void_p, c_int64, c_void_p, c_void_p]
        lib.ep_cuda_device_name.argtypes = [ctypes.c_char_p, c_int32]
        self.buffers: list[int] = []

    def check(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: {self.lib.ep_cuda_last_error().decode()}")

    def name(self) -> str:
        buf = ctypes.create_string_buffer(256)
        self.check(self.lib.ep_cuda_device_name(buf, 256), "device name")
        return buf.value.decode()

    def alloc(self, nbytes: int) -> int:
        ptr = c_void_p()
        self.check(self.lib.ep_cuda_malloc(ctypes.byref(ptr), max(nbytes, 1)), "malloc")
        self.buffers.append(ptr.value)
        return ptr.value

    def upload(self, array: np.ndarray) -> int:
        array = np.ascontiguousarray(array)
        ptr = self.alloc(array.nbytes)
        self.check(self.lib.ep_cuda_memcpy(ptr, array.ctypes.data, array.nbytes, 1), "upload")
        return ptr

    def download(self, ptr: int, like: np.ndarray) -> np.ndarray:
        out = np.empty_like(like)
        self.check(self.lib.ep_cuda_memcpy(out.ctypes.data, ptr, out.nbytes, 2), "download")
        return out

    def sync(self) -> None:
        self.check(self.lib.ep_cuda_synchronize(), "synchronize")

    def free_all(self) -> None:
        for ptr in self.buffers:
            self.lib.ep_cuda_free(ptr)
        self.buffers.clear()


def median_ms(fn, runs: int, sync=None) -> float:
    fn()
    if sync:
        sync()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return float(np.median(samples))


def call(dev: Device, status: int, what: str) -> None:
    dev.check(status, what)


def bench(dev: Device, runs: int) -> list[dict]:
    from edgeperc.kernels import reference
    from edgeperc.kernels.cuda import cuda_library
    from edgeperc.kernels.params import SHAPES

    lib, cuda = dev.lib, cuda_library()
    rng = np.random.default_rng(0)
    rows = []

    frame = rng.integers(0, 256, (8192, 8192, 3), dtype=np.uint8)
    h, w, c = frame.shape
    d_frame, d_sum = dev.upload(frame), dev.alloc(8)
    small = np.empty((256, 256, 3), np.uint8)
    d_small = dev.alloc(small.nbytes)
    want = reference.area_downsample_opencv(frame, (256, 256))

    def area():
        call(dev, lib.ep_cuda_area_downsample_u8(d_frame, frame.nbytes, h, w, w * c, c, 256, 256, d_small,
                                                 small.nbytes, None), "area")

    gpu = median_ms(area, runs, dev.sync)
    floor = median_ms(lambda: call(dev, lib.ep_cuda_sum_bytes(d_frame, frame.nbytes, d_sum, None), "sum"), runs, dev.sync)
    cpu = median_ms(lambda: reference.area_downsample_opencv(frame, (256, 256)), max(3, runs // 5))
    exact = np.array_equal(dev.download(d_small, small), want)
    rows.append({"kernel": "area downsample, frame on the GPU", "input": "8192x8192 RGB -> 256x256", "gpu_ms": gpu,
                 "floor_ms": floor, "opencv_ms": cpu, "check": "bit-exact vs cv2" if exact else "DIFFERS from cv2"})
    copy = median_ms(lambda: cuda.area_downsample(frame, (256, 256)), max(3, runs // 5))
    zero = median_ms(lambda: cuda.area_downsample_zero_copy(frame, (256, 256)), max(3, runs // 5))
    rows.append({"kernel": "area downsample, frame in host memory (copy in)", "input": "same", "gpu_ms": copy,
                 "floor_ms": None, "opencv_ms": cpu, "check": "bit-exact vs cv2" if np.array_equal(
                     cuda.area_downsample(frame, (256, 256)), want) else "DIFFERS"})
    rows.append({"kernel": "area downsample, zero-copy (mapped host memory)", "input": "same", "gpu_ms": zero,
                 "floor_ms": None, "opencv_ms": cpu, "check": "bit-exact vs cv2" if np.array_equal(
                     cuda.area_downsample_zero_copy(frame, (256, 256)), want) else "DIFFERS"})

    centres = rng.uniform(500, 7700, (16, 2))
    mats = np.array([[[1.4, 0.2, x - 280], [-0.2, 1.4, y - 280], [1e-5, 0, 1]] for x, y in centres], np.float32)
    d_m = dev.upload(mats)
    scale, mean = np.full(3, 1 / 255, np.float32), np.asarray(NORM["mean"], np.float32)
    std = np.asarray(NORM["std"], np.float32)
    for dtype, code in ((np.float32, 0), (np.float16, 1)):
        out = np.empty((16, 3, 400, 400), dtype)
        d_out = dev.alloc(out.nbytes)

        def roi(d_out=d_out, out=out, code=code):
            call(dev, lib.ep_cuda_roi_warp_normalise(
                d_frame, frame.nbytes, h, w, w * c, c, d_m, 16, 64, 400, 400, scale.ctypes.data, mean.ctypes.data,
                std.ctypes.data, ctypes.c_float(0.0), code, d_out, out.nbytes, None), "roi")

        gpu = median_ms(roi, runs, dev.sync)
        got = dev.download(d_out, out).astype(np.float32)
        ref = reference.roi_warp_normalise(frame, mats, (400, 400), **NORM).astype(dtype).astype(np.float32)
        cpu = median_ms(lambda: reference.roi_warp_normalise_opencv(frame, mats, (400, 400), **NORM), max(3, runs // 5))
        rows.append({"kernel": f"RoI warp + normalise ({np.dtype(dtype).name})", "input": "16 RoIs of the 8k frame -> 400x400",
                     "gpu_ms": gpu, "floor_ms": None, "opencv_ms": cpu,
                     "check": f"max |diff| vs numpy reference {np.abs(got - ref).max():.2g}"})

    prob = np.zeros((400, 400), np.float32)
    for x0, y0, bw, bh in rng.integers([0, 0, 30, 10], [330, 360, 120, 60], (8, 4)):
        prob[y0:y0 + bh, x0:x0 + bw] = 0.9
    d_prob = dev.upload(prob)
    ws = lib.ep_cuda_mask_workspace_bytes(400, 400)
    d_ws, d_boxes, d_n = dev.alloc(ws), dev.alloc(1024 * 20), dev.alloc(4)

    def mask():
        call(dev, lib.ep_cuda_mask_components(d_prob, prob.size, 400, 400, 400, ctypes.c_float(0.5), 2, SHAPES["disk"],
                                              1024, d_boxes, d_n, None, None, 0, d_ws, ws, None), "mask")

    gpu = median_ms(mask, runs, dev.sync)
    cpu = median_ms(lambda: reference.mask_components_opencv(prob, 0.5, 2), runs)
    same = np.array_equal(cuda.mask_components(prob, 0.5, 2).boxes, reference.mask_components(prob, 0.5, 2).boxes)
    rows.append({"kernel": "mask post-processing", "input": "400x400, erode disk r=2, 8-connected boxes", "gpu_ms": gpu,
                 "floor_ms": None, "opencv_ms": cpu, "check": "boxes bit-exact vs cv2" if same else "DIFFERS"})

    pano = cv2.GaussianBlur(rng.integers(0, 256, (960, 1920, 3), dtype=np.uint8), (0, 0), 3)
    d_pano = dev.upload(pano)
    out = np.empty((3, 512, 1024 + 32), np.float32)
    d_out = dev.alloc(out.nbytes)

    def panorama():
        call(dev, lib.ep_cuda_panorama_input(d_pano, pano.nbytes, 960, 1920, 1920 * 3, 3, 512, 1024, 16, scale.ctypes.data,
                                             mean.ctypes.data, std.ctypes.data, d_out, out.nbytes, None), "panorama")

    gpu = median_ms(panorama, runs, dev.sync)
    floor = median_ms(lambda: call(dev, lib.ep_cuda_sum_bytes(d_pano, pano.nbytes, d_sum, None), "sum"), runs, dev.sync)
    cpu = median_ms(lambda: reference.panorama_input_opencv(pano, (512, 1024), 16, **NORM), max(3, runs // 5))
    diff = np.abs(dev.download(d_out, out) - reference.panorama_input(pano, (512, 1024), 16, **NORM)).max()
    rows.append({"kernel": "panorama input", "input": "960x1920 RGB -> 3x512x(1024+2x16)", "gpu_ms": gpu,
                 "floor_ms": floor, "opencv_ms": cpu, "check": f"max |diff| vs numpy reference {diff:.2g}"})
    dev.free_all()
    return rows


def markdown(rows: list[dict], device: str, command: str) -> str:
    lines = ["## Kernels on a GPU: CUDA library vs OpenCV CPU vs one-pass read", "",
             f"Command: `{command}`  ", f"GPU: {device}; CPU side (OpenCV): the same machine's CPU  ",
             ("Wall-clock of launch + cudaDeviceSynchronize, median; floor = one read pass over the kernel's input "
              "frame on the same GPU."), "",
             "| kernel | input | GPU (ms) | read floor (ms) | OpenCV CPU (ms) | OpenCV / GPU | check |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        floor = f"{r['floor_ms']:.3f}" if r["floor_ms"] is not None else "—"
        lines.append(f"| {r['kernel']} | {r['input']} | {r['gpu_ms']:.3f} | {floor} | {r['opencv_ms']:.1f} | "
                     f"{r['opencv_ms'] / r['gpu_ms']:.0f}x | {r['check']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, help="folder for gpu_kernels.json and gpu_kernels.md")
    parser.add_argument("--write-docs", action="store_true", help="write the kernels-gpu section of docs/BENCHMARKS.md")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from edgeperc.kernels.cuda import cuda_status
    from edgeperc.kernels.library import CUDA_LIB, load

    status = cuda_status()
    if not status.usable:
        print(f"gpu_kernels: {status.reason}; nothing measured, nothing written")
        return 0
    dev = Device(load(CUDA_LIB))
    device = dev.name()
    rows = bench(dev, args.runs)
    text = markdown(rows, device, "python benchmarks/gpu_kernels.py" + (f" --runs {args.runs}" if args.runs != 30 else ""))
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_kernels.json").write_text(json.dumps({"device": device, "rows": rows}, indent=2))
        (args.out / "gpu_kernels.md").write_text(text)
    if args.write_docs:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_ynet_precisions import write_section

        write_section(ROOT / "docs" / "BENCHMARKS.md", "kernels-gpu", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
