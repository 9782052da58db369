"""LISAt -> seven ONNX graphs + ``lisat_manifest.json``, and their parity with PyTorch.

Each graph goes the repo's one export path (onnx_export.torch_to_onnx, checker + shape inference,
constant folding) and carries its own embedded Manifest; the folder's manifest ties them together
(sha256 of each file, token ids, KV-cache layout, preprocessing). Parity runs every graph on ONNX
Runtime against its PyTorch piece, then end to end: greedy tokens and the <SEG> mask.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from edgeperc.export.graph_passes import check_and_infer, fold_constants
from edgeperc.export.lisat_graphs import GraphSpec, graph_specs
from edgeperc.export.onnx_export import MIN_OPSET, tool_versions, torch_to_onnx
from edgeperc.export.parity import compare_outputs
from edgeperc.runtime.pipelines.lisat.decode import greedy_decode_graphs
from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs

from edgeperc.errors import ConfigError
from edgeperc.hashing import sha256_file
from edgeperc.lisat_manifest import (
    FileEntry,
    GraphEntry,
    ImagePreprocess,
    KvCacheLayout,
    LisatManifest,
    TokenIds,
    read_lisat_manifest,
    verify_lisat_manifest,
    write_lisat_manifest,
)
from edgeperc.manifest import Manifest, read_manifest, value_info_spec, write_manifest
from edgeperc.models.lisat import LisatModel, greedy_decode
from edgeperc.models.lisat_config import clip_normalisation, sam_normalisation
from edgeperc.models.lisat_tokenizer import (
    BOS_ID,
    EOS_ID,
    TOKENIZER_FILE,
    check_tokenizer,
    load_tokenizer,
)
from edgeperc.onnx_io import save_onnx

__all__ = ["check_lisat_parity", "export_lisat", "mask_iou", "verify_lisat_manifest"]


def _to_numpy(example: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in example.items()}


def export_graph(spec: GraphSpec, opset: int, graph_fields: dict[str, Any]) -> onnx.ModelProto:
    """One wrapper -> checked, folded ONNX with its own embedded manifest."""
    # The tracer's warnings are about Python branches frozen at trace time: input shape checks
    # (static here) and SDPA's is_causal (q_length > 1), causal in prefill and not in the
    # one-token decode, which is why prefill and decode are separate graphs.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # transformers' padding-mask lookup indexes by arange (never negative), the case this warns of.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
        proto = torch_to_onnx(spec.module, _to_numpy(spec.example), spec.inputs, spec.outputs, dynamic_batch=False,
                              opset=opset, dynamic_axes=spec.dynamic_axes)
    proto = check_and_infer(proto)
    proto, _ = fold_constants(proto)
    proto = check_and_infer(proto)  # onnx.checker, full check, on the graph as written
    io = {i.name: i for i in list(proto.graph.input) + list(proto.graph.output)}
    write_manifest(proto, Manifest(
        inputs=[value_info_spec(io[n]) for n in spec.inputs], outputs=[value_info_spec(io[n]) for n in spec.outputs],
        layout="NCHW" if spec.name in ("vision", "mask_encoder") else "tensors", opset=opset,
        **{**graph_fields, "family_config": {**graph_fields["family_config"], "graph": spec.name}}))
    return proto


def _token_ids(model: LisatModel, tokenizer_path: Path | None) -> TokenIds:
    """Special ids from the tokenizer when given (BOS / EOS are not in LisatConfig), else LLaMA's 1 / 2."""
    c = model.config
    bos, eos = BOS_ID, EOS_ID
    if tokenizer_path is not None:
        tok = load_tokenizer(tokenizer_path)
        check_tokenizer(tok, c)
        bos, eos = getattr(tok, "bos_id", bos), getattr(tok, "eos_id", eos)
    return TokenIds(bos_id=bos, eos_id=eos, pad_id=c.pad_token_id, image_token_id=c.image_token_id,
                    seg_token_id=c.seg_token_id, n_image_tokens=c.vision.tokens)


def export_lisat(model: LisatModel, out_dir: str | Path, tokenizer_path: str | Path | None = None,
                 mask_size: tuple[int, int] | None = None, opset: int = MIN_OPSET,
                 checkpoint_sha256: str | None = None, progress: bool = True) -> LisatManifest:
    """Write ``model``'s graphs as ``<name>.onnx`` into ``out_dir`` with ``lisat_manifest.json`` (and
    the tokenizer JSON beside them when given); returns the manifest.

    ``mask_size`` (H, W) of mask_decoder's logits: default SAM's input size (S, S), where the runtime
    crops and resizes to the image (runtime.pipelines.lisat.masks); a fixed camera size there
    bakes SAM's whole postprocessing into the graph, and the runtime only thresholds at 0.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    c = model.config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = c.sam.image_size
    mask_size = tuple(int(x) for x in (mask_size or (s, s)))
    if len(mask_size) != 2 or min(mask_size) < 1:
        raise ConfigError(f"mask_size {mask_size} must be two positive sides (H, W)")
    tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
    tokens = _token_ids(model, tokenizer_path)
    versions = tool_versions()
    graph_fields = {"family": "lisat", "family_version": "1", "checkpoint_sha256": checkpoint_sha256,
                    "tool_versions": versions, "family_config": {"mask_size": list(mask_size)}}
    model.eval()
    specs = graph_specs(model, mask_size)
    graphs: dict[str, GraphEntry] = {}
    columns = (TextColumn("export LISAt {task.fields[graph]}"), BarColumn(), MofNCompleteColumn())
    with torch.no_grad(), Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("export", total=len(specs), graph="")
        for spec in specs:
            bar.update(task, graph=spec.name)
            proto = export_graph(spec, opset, graph_fields)
            path = save_onnx(proto, out_dir / f"{spec.name}.onnx")
            embedded = read_manifest(proto)
            graphs[spec.name] = GraphEntry(file=path.name, sha256=sha256_file(path), inputs=embedded.inputs,
                                           outputs=embedded.outputs)
            bar.advance(task)
    tokenizer = None
    if tokenizer_path is not None:
        source = tokenizer_path if tokenizer_path.is_file() else tokenizer_path / TOKENIZER_FILE
        copied = out_dir / source.name
        if copied.resolve() != source.resolve():
            shutil.copyfile(source, copied)
        tokenizer = FileEntry(file=copied.name, sha256=sha256_file(copied))
    v = c.vision.image_size
    manifest = LisatManifest(
        graphs=graphs, config=c.model_dump(mode="json"), tokenizer=tokenizer, tokens=tokens,
        kv_cache=KvCacheLayout(layers=c.llm.layers, kv_heads=c.llm.kv_heads, head_dim=c.llm.hidden_size // c.llm.heads),
        clip=ImagePreprocess(size=(v, v), normalisation=clip_normalisation(),
                             resize="to size x size (cv2 INTER_AREA), as lisat_training.preprocess_clip", pad="none"),
        sam=ImagePreprocess(size=(s, s), normalisation=sam_normalisation(),
                            resize="longest side to size (sam_resize_hw; INTER_AREA shrinking, INTER_LINEAR growing)",
                            pad="zeros bottom/right after normalisation, as lisat_training.preprocess_sam"),
        mask_size=mask_size, opset=opset, checkpoint_sha256=checkpoint_sha256, tool_versions=versions)
    write_lisat_manifest(manifest, out_dir)
    return manifest


# -- parity ---------------------------------------------------------------------------------------
def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two logit maps thresholded at 0; two empty masks agree (1.0)."""
    pa, pb = np.asarray(a) > 0, np.asarray(b) > 0
    union = int((pa | pb).sum())
    return 1.0 if union == 0 else int((pa & pb).sum()) / union


def _worst(into: dict[str, float], errors: Mapping[str, float]) -> None:
    for name, value in errors.items():
        into[name] = max(into.get(name, 0.0), value)


def _graph_diffs(model: LisatModel, runners: Mapping[str, Any], example: Mapping[str, torch.Tensor],
                 mask_size: tuple[int, int], into: dict[str, dict[str, float]]) -> None:
    """Every graph on inputs derived from ``example``, vs its PyTorch piece; worst abs diff per output."""
    c = model.config
    layers = c.llm.layers
    ids = example["input_ids"]
    image_tokens = model.encode_image_clip(example["images_clip"])
    image_embeddings = model.encode_image_sam(example["images_sam"])
    embeds, mask = model.splice_image_tokens(ids, image_tokens)
    logits, hidden, past = model.forward_llm(embeds, mask)
    token = logits[:, -1].argmax(-1, keepdim=True)
    step = model.embed_tokens(token)
    mask1 = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    logits1, hidden1, past1 = model.forward_llm(step, mask1, past)
    seg = model.seg_embedding(hidden[:, -1])
    present = {f"present_{k}_{i}": past[i][j] for i in range(layers) for j, k in enumerate(("key", "value"))}
    present1 = {f"present_{k}_{i}": past1[i][j] for i in range(layers) for j, k in enumerate(("key", "value"))}
    cases = {
        "vision": ({"images_clip": example["images_clip"]}, {"image_tokens": image_tokens}),
        "mask_encoder": ({"images_sam": example["images_sam"]}, {"image_embeddings": image_embeddings}),
        "embed": ({"input_ids": ids}, {"embeddings": model.embed_tokens(ids)}),
        "prefill": ({"inputs_embeds": embeds}, {"logits": logits[:, -1], "hidden": hidden[:, -1], **present}),
        "decode": ({"inputs_embeds": step, **{n.replace("present", "past"): t for n, t in present.items()}},
                   {"logits": logits1[:, -1], "hidden": hidden1[:, -1], **present1}),
        "seg_projector": ({"hidden": hidden[:, -1]}, {"seg_embedding": seg}),
        "mask_decoder": ({"image_embeddings": image_embeddings, "seg_embedding": seg},
                         {"mask_logits": model.decode_mask(image_embeddings, seg, mask_size)}),
    }
    for name, (feeds, reference) in cases.items():
        got = runners[name].infer(_to_numpy(feeds))
        abs_err, _ = compare_outputs(_to_numpy(reference), got)
        _worst(into.setdefault(name, {}), abs_err)


def check_lisat_parity(model: LisatModel, out_dir: str | Path, examples: Sequence[Mapping[str, torch.Tensor]],
                       max_new_tokens: int = 8) -> dict[str, Any]:
    """ONNX Runtime (CPU) on the export in ``out_dir`` vs ``model``, on ``examples`` (dicts of
    images_clip (1, 3, Hc, Wc), images_sam (1, 3, S, S), input_ids (1, L) with one image placeholder).

    Returns {"graphs": {graph: {output: max abs diff}}, "max_abs_diff": {graph: worst},
    "tokens_equal": all greedy answers token-exact, "mask_iou": min over examples (threshold 0),
    "examples": per example tokens / iou / mask_source}. The mask comes from each side's own hidden
    state at the first <SEG>; without one in the PyTorch answer ("forced") from the state that
    emits the first token, so the mask path is compared even for an untrained model.
    """
    manifest, runners = open_lisat_graphs(out_dir)
    mask_size = tuple(manifest.mask_size)
    t = manifest.tokens
    graphs: dict[str, dict[str, float]] = {}
    per_example = []
    model.eval()
    with torch.no_grad():
        for example in examples:
            _graph_diffs(model, runners, example, mask_size, graphs)
            ref_ids, ref_emitted = greedy_decode(model, example["images_clip"], example["input_ids"], max_new_tokens,
                                                 stop_id=t.eos_id)
            image_tokens = runners["vision"].infer({"images_clip": example["images_clip"].numpy()})["image_tokens"]
            ours = greedy_decode_graphs(runners, manifest, example["input_ids"].numpy(), image_tokens, max_new_tokens,
                                        stop_at_seg=False)
            ref_list = ref_ids[0].tolist()
            seg_at = ref_list.index(t.seg_token_id) if t.seg_token_id in ref_list else None
            ref_hidden = ref_emitted[:, seg_at if seg_at is not None else 0]
            our_hidden = ours.seg_hidden if ours.seg_hidden is not None else ours.emitted[:1]
            embeddings = runners["mask_encoder"].infer({"images_sam": example["images_sam"].numpy()})["image_embeddings"]
            seg = runners["seg_projector"].infer({"hidden": our_hidden})["seg_embedding"]
            our_mask = runners["mask_decoder"].infer({"image_embeddings": embeddings, "seg_embedding": seg})["mask_logits"]
            ref_mask = model.decode_mask(model.encode_image_sam(example["images_sam"]), model.seg_embedding(ref_hidden),
                                         mask_size).numpy()
            per_example.append({"tokens": ours.tokens.tolist(), "reference_tokens": ref_list,
                                "tokens_equal": ours.tokens.tolist() == ref_list,
                                "mask_source": "greedy" if seg_at is not None else "forced",
                                "mask_iou": mask_iou(our_mask, ref_mask),
                                "mask_positive_fraction": float((ref_mask > 0).mean()),
                                "mask_max_abs_diff": float(np.abs(our_mask - ref_mask).max())})
    return {"graphs": graphs, "max_abs_diff": {g: max(d.values()) for g, d in graphs.items()},
            "tokens_equal": all(e["tokens_equal"] for e in per_example),
            "mask_iou": min((e["mask_iou"] for e in per_example), default=float("nan")), "examples": per_example}


def parity_examples(model: LisatModel, out_dir: str | Path, count: int = 3, seed: int = 4242) -> list[dict[str, torch.Tensor]]:
    """``count`` generated aerial scenes with one templated query each, preprocessed as the runtime
    does and tokenized with the export's tokenizer: inputs for check_lisat_parity."""
    from edgeperc.models.lisat_preprocess import preprocess_clip, preprocess_sam
    from edgeperc.models.lisat_tokenizer import load_tokenizer, seg_prompt
    from edgeperc.synth.aerial import aerial_recipe, render_aerial
    from edgeperc.synth.aerial_queries import generate_queries, scene_geometry

    manifest = read_lisat_manifest(out_dir)
    if manifest.tokenizer is None:
        raise ConfigError(f"{out_dir}: the export has no tokenizer to build parity prompts with")
    tokenizer = load_tokenizer(Path(out_dir) / manifest.tokenizer.file)
    side = int(manifest.sam.size[0])
    examples = []
    for k in range(count):
        rng_seed = seed + k
        scene = render_aerial(np.random.default_rng(rng_seed), aerial_recipe("default", (side, side)))
        query = generate_queries(scene, np.random.default_rng([rng_seed, 1]), 1, geometry=scene_geometry(scene))[0]
        ids = tokenizer.encode(seg_prompt(query.text), add_bos=True)
        examples.append({"images_clip": torch.from_numpy(preprocess_clip(scene.image, int(manifest.clip.size[0]))[None]),
                         "images_sam": torch.from_numpy(preprocess_sam(scene.image, side)[None]),
                         "input_ids": torch.tensor([ids], dtype=torch.int64)})
    return examples
