"""The picture behind docs/img/lisat_segment.png: the shipped LISAt (compressed export) answering
each generated query of unseen aerial scenes, overlay beside the generator's true mask, IoU printed.

It runs what `edgeperc segment` runs (LisatPipeline on the export from the cache), on scenes from
`edgeperc generate aerial` (default seed 11: not a training seed), so a reader can check the
figure by eye and by number. The encoders run once per scene; each query reuses them.

    python benchmarks/plot_lisat_segment.py --seed 11 --out docs/img/lisat_segment.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def truth_outline(picture: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``picture`` with the true mask's outline in white (the prediction is the cyan tint)."""
    out = picture.copy()
    contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scenes", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precision", default="compressed", choices=["fp32", "compressed"])
    parser.add_argument("--out", type=Path, default=Path("docs/img/lisat_segment.png"))
    args = parser.parse_args(argv)

    from edgeperc.cli import main as cli
    from edgeperc.lisat_exports import resolve_lisat_export
    from edgeperc.runtime.pipelines.lisat.overlay import captioned, overlay_mask
    from edgeperc.runtime.pipelines.lisat.pipeline import LisatPipeline

    pipeline = LisatPipeline(resolve_lisat_export(None, args.precision), threads=1)
    rows, record = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        code = cli(["generate", "aerial", "-o", str(data), "--count", str(args.scenes), "--seed", str(args.seed),
                    "--size", str(args.size), "--preview", "0"])
        if code:
            return code
        annotations = [json.loads(line) for line in (data / "annotations.jsonl").read_text().splitlines()]
        for name in sorted({a["image"] for a in annotations}):
            image = cv2.cvtColor(cv2.imread(str(data / name)), cv2.COLOR_BGR2RGB)
            tiles = [captioned(image, [Path(name).stem, "white: true mask"])]
            for a in (a for a in annotations if a["image"] == name):
                truth = cv2.imread(str(data / a["mask"]), cv2.IMREAD_GRAYSCALE) > 0
                answer = pipeline.answer(image, a["phrase"])
                mask = answer.mask if answer.mask is not None else np.zeros_like(truth)
                score = iou(mask, truth)
                record.append({"image": name, "query": a["phrase"], "target_area_px": a["target_area_px"],
                               "answer": answer.text, "iou": round(score, 3)})
                words = a["phrase"].split()
                lines = [" ".join(words[i: i + 6]) for i in range(0, len(words), 6)]
                tiles.append(captioned(truth_outline(overlay_mask(image, answer.mask), truth),
                                       [*lines, f"IoU {score:.2f} ({a['target_area_px']} px)"]))
            height = max(t.shape[0] for t in tiles)
            rows.append(np.concatenate([np.pad(t, ((0, height - t.shape[0]), (0, 4), (0, 0)), constant_values=255)
                                        for t in tiles], axis=1))
    width = max(r.shape[1] for r in rows)
    picture = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    json.dump({"seed": args.seed, "precision": args.precision, "queries": record}, sys.stdout, indent=1)
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
