"""Shared fixtures of the LISAt tests: the tiny model (random init, seeded) and a word tokenizer."""

from __future__ import annotations

import importlib.util

import pytest

QUERIES = ("the white plane left of the hangar", "the barge moored near two ships",
           "the largest storage tank in the bottom right corner")


def require_lisat_extra() -> None:
    """Skip the calling module unless torch, transformers and segment-anything are installed.

    find_spec, not importorskip, for segment_anything: its package __init__ needs torchvision,
    which edgeperc does not (lisat.sam_modeling imports the model modules alone).
    """
    for module, extra in (("torch", "export"), ("transformers", "lisat"), ("segment_anything", "lisat")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"LISAt tests need {module} (pip install -e '.[{extra}]')", allow_module_level=True)


@pytest.fixture(scope="session")
def tiny_config():
    from edgeperc.models.lisat_config import LisatConfig

    return LisatConfig.tiny()


@pytest.fixture(scope="session")
def tokenizer():
    from edgeperc.models.lisat_tokenizer import build_tokenizer

    return build_tokenizer(QUERIES, max_size=512)


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    """The tiny LISAt model in eval mode; tests must not train it (build their own for that)."""
    import torch

    from edgeperc.models.lisat import LisatModel

    torch.manual_seed(0)
    return LisatModel(tiny_config).eval()


@pytest.fixture(scope="session")
def tiny_inputs(tiny_config, tokenizer):
    """(images_clip (2, 3, 128, 128), images_sam (2, 3, 256, 256), input_ids (2, L)) for the tiny model."""
    import torch

    from edgeperc.models.lisat_tokenizer import seg_conversation

    ids = [tokenizer.encode(seg_conversation(q)) for q in QUERIES[:2]]
    length = max(len(i) for i in ids)
    input_ids = torch.tensor([i + [tokenizer.pad_id] * (length - len(i)) for i in ids])
    g = torch.Generator().manual_seed(1)
    clip = torch.randn(2, 3, tiny_config.vision.image_size, tiny_config.vision.image_size, generator=g)
    sam = torch.randn(2, 3, tiny_config.sam.image_size, tiny_config.sam.image_size, generator=g)
    return clip, sam, input_ids
