"""Fixtures of the LISAt export tests: one tiny seeded model, exported once per session.

The model's <SEG> row of lm_head is scaled (x4) so that, untrained, greedy decoding emits <SEG>
after a few tokens on two of the three prompts and never on the third: both the <SEG> path
through the KV cache and the no-<SEG> path are exercised without training.
"""

from __future__ import annotations

import pytest

from tests.lisat_model.conftest import QUERIES, require_lisat_extra

SEG_LOGIT_SCALE = 4.0
MAX_NEW_TOKENS = 8


@pytest.fixture(scope="session")
def lisat_tokenizer():
    from edgeperc.models.lisat_tokenizer import build_tokenizer

    return build_tokenizer(QUERIES, max_size=512)


@pytest.fixture(scope="session")
def seg_model():
    require_lisat_extra()
    import torch

    from edgeperc.models.lisat import LisatModel
    from edgeperc.models.lisat_config import LisatConfig

    config = LisatConfig.tiny()
    torch.manual_seed(0)
    model = LisatModel(config).eval()
    with torch.no_grad():
        model.lm_head.weight[config.seg_token_id] *= SEG_LOGIT_SCALE
    return model


@pytest.fixture(scope="session")
def prompts(seg_model, lisat_tokenizer):
    """One example per query: images_clip (1, 3, 128, 128), images_sam (1, 3, 256, 256), input_ids (1, L)."""
    import torch

    from edgeperc.models.lisat_tokenizer import seg_prompt

    c = seg_model.config
    g = torch.Generator().manual_seed(1)
    out = []
    for query in QUERIES:
        out.append({"images_clip": torch.randn(1, 3, c.vision.image_size, c.vision.image_size, generator=g),
                    "images_sam": torch.randn(1, 3, c.sam.image_size, c.sam.image_size, generator=g),
                    "input_ids": torch.tensor([lisat_tokenizer.encode(seg_prompt(query))])})
    return out


@pytest.fixture(scope="session")
def lisat_export_dir(tmp_path_factory, seg_model, lisat_tokenizer):
    from edgeperc.export.lisat_export import export_lisat

    folder = tmp_path_factory.mktemp("lisat_export")
    tokenizer_path = lisat_tokenizer.save(tmp_path_factory.mktemp("tokenizer"))
    export_lisat(seg_model, folder, tokenizer_path=tokenizer_path, progress=False)
    return folder


@pytest.fixture(scope="session")
def parity_report(seg_model, lisat_export_dir, prompts):
    from edgeperc.export.lisat_export import check_lisat_parity

    return check_lisat_parity(seg_model, lisat_export_dir, prompts, max_new_tokens=MAX_NEW_TOKENS)


@pytest.fixture(scope="session")
def graphs(lisat_export_dir):
    from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs

    return open_lisat_graphs(lisat_export_dir)
