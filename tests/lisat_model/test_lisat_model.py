"""LisatModel: LISA's key names (full size on the meta device), shapes of each piece, <SEG> -> mask,
KV-cache decoding = full forward, SAM parity of the paired mask decoder, a few training steps."""

from __future__ import annotations

import pytest

from tests.lisat_model.conftest import require_lisat_extra

require_lisat_extra()

import torch

from edgeperc.errors import InvalidInputError
from edgeperc.models.lisat import (
    LisatModel,
    count_parameters,
    example_inputs,
    greedy_decode,
    lisat_loss,
    splice_labels,
)
from edgeperc.models.lisat_config import IGNORE_INDEX, LisatConfig, sam_resize_hw
from edgeperc.models.lisat_tokenizer import seg_prompt, training_example

# Names and shapes of LISA-7B-v1's layout (dvlab-research/LISA model/LISA.py + llava_arch.py, SAM ViT-H).
FULL_KEYS = {
    "model.embed_tokens.weight": (32003, 4096),
    "model.layers.0.self_attn.q_proj.weight": (4096, 4096),
    "model.layers.31.mlp.down_proj.weight": (4096, 11008),
    "model.norm.weight": (4096,),
    "lm_head.weight": (32003, 4096),
    "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight": (1024, 3, 14, 14),
    "model.vision_tower.vision_tower.vision_model.embeddings.position_embedding.weight": (257, 1024),
    "model.vision_tower.vision_tower.vision_model.encoder.layers.23.self_attn.q_proj.weight": (1024, 1024),
    "model.vision_tower.vision_tower.vision_model.post_layernorm.weight": (1024,),
    "model.mm_projector.weight": (4096, 1024),
    "model.visual_model.image_encoder.pos_embed": (1, 64, 64, 1280),
    "model.visual_model.image_encoder.blocks.31.attn.qkv.weight": (3840, 1280),
    "model.visual_model.image_encoder.blocks.31.attn.rel_pos_h": (127, 80),
    "model.visual_model.image_encoder.blocks.0.attn.rel_pos_h": (27, 80),
    "model.visual_model.image_encoder.neck.0.weight": (256, 1280, 1, 1),
    "model.visual_model.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (2, 128),
    "model.visual_model.prompt_encoder.no_mask_embed.weight": (1, 256),
    "model.visual_model.mask_decoder.transformer.layers.1.cross_attn_token_to_image.q_proj.weight": (128, 256),
    "model.visual_model.mask_decoder.output_hypernetworks_mlps.3.layers.2.weight": (32, 256),
    "model.text_hidden_fcs.0.0.weight": (4096, 4096),
    "model.text_hidden_fcs.0.2.weight": (256, 4096),
}
PREFIXES = ("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head.",
            "model.vision_tower.vision_tower.vision_model.", "model.mm_projector.",
            "model.visual_model.image_encoder.", "model.visual_model.prompt_encoder.",
            "model.visual_model.mask_decoder.", "model.text_hidden_fcs.0.")


def test_full_layout_on_meta_device():
    with torch.device("meta"):
        model = LisatModel(LisatConfig.full())
    state = model.state_dict()
    for name, shape in FULL_KEYS.items():
        assert tuple(state[name].shape) == shape, name
    assert all(k.startswith(PREFIXES) for k in state), [k for k in state if not k.startswith(PREFIXES)][:5]
    assert not any(k.endswith(("inv_freq", "position_ids", "pixel_mean")) for k in state)  # derived buffers
    assert 7.6e9 < count_parameters(model) < 7.8e9  # LLaMA-7B 6.74 B + CLIP-L 0.30 B + SAM-H 0.64 B + heads


def test_tiny_is_small_and_runs_on_example_inputs(tiny_model, tiny_config):
    assert count_parameters(tiny_model) < 5_000_000
    feeds = example_inputs(tiny_config, batch=2, seed=4)
    assert torch.equal(feeds["input_ids"], example_inputs(tiny_config, batch=2, seed=4)["input_ids"])
    with torch.no_grad():
        out = tiny_model(**feeds)
    assert out.seg_batch_index.tolist() == [0, 1] and out.mask_logits.shape == (2, 1, 256, 256)


def test_piece_shapes(tiny_model, tiny_config, tiny_inputs):
    clip, sam, ids = tiny_inputs
    d, p, v = tiny_config.llm.hidden_size, tiny_config.sam.prompt_embed_dim, tiny_config.llm.vocab_size
    with torch.no_grad():
        tokens = tiny_model.encode_image_clip(clip)
        assert tokens.shape == (2, tiny_config.vision.tokens, d)
        embeddings = tiny_model.encode_image_sam(sam)
        assert embeddings.shape == (2, p, 16, 16)
        embeds, mask = tiny_model.splice_image_tokens(ids, tokens, (ids != 0).long())
        assert embeds.shape == (2, ids.shape[1] + 63, d) and mask.shape == embeds.shape[:2]
        logits, hidden, past = tiny_model.forward_llm(embeds, mask)
        assert logits.shape == (*embeds.shape[:2], v) and hidden.shape == embeds.shape
        assert len(past) == tiny_config.llm.layers and past[0][0].shape == (2, 2, embeds.shape[1], 32)
        seg = tiny_model.seg_embedding(hidden[:, -1])
        assert seg.shape == (2, 1, p)
        masks = tiny_model.decode_mask(embeddings, seg, (90, 120))
        assert masks.shape == (2, 1, 90, 120) and torch.isfinite(masks).all()
    with pytest.raises(InvalidInputError, match="images_clip must be"):
        tiny_model.encode_image_clip(sam)
    with pytest.raises(InvalidInputError, match="exactly one image placeholder"):
        tiny_model.splice_image_tokens(ids[:, 5:], tokens)


def test_splice_puts_image_tokens_at_the_placeholder(tiny_model, tiny_config):
    ids = torch.tensor([[1, 4, 7, 8], [1, 7, 8, 4]])
    image = torch.randn(2, tiny_config.vision.tokens, tiny_config.llm.hidden_size)
    embeds, _ = tiny_model.splice_image_tokens(ids, image)
    text = tiny_model.embed_tokens(ids)
    assert torch.equal(embeds[0, 1:65], image[0]) and torch.equal(embeds[0, 65:], text[0, 2:])
    assert torch.equal(embeds[1, :3], text[1, :3]) and torch.equal(embeds[1, 3:], image[1])
    labels = splice_labels(ids, ids, tiny_config)
    assert (labels[0, 1:65] == IGNORE_INDEX).all() and labels[0, 65:].tolist() == [7, 8]


def test_forward_gives_one_mask_per_seg_from_the_state_that_emits_it(tiny_model, tiny_config, tiny_inputs):
    clip, sam, ids = tiny_inputs
    ids = ids.clone()
    second = (ids[1] == 0).nonzero()[0, 0] if (ids[1] == 0).any() else None
    if second is not None:  # a second <SEG> in row 1, in its padding, to get two masks there
        ids[1, second] = tiny_config.seg_token_id
    mask = ((ids != 0) | (ids == tiny_config.seg_token_id)).long()
    with torch.no_grad():
        out = tiny_model(clip, sam, ids, mask, original_size=(64, 96))
        n_seg = int((ids == tiny_config.seg_token_id).sum())
        assert out.mask_logits.shape == (n_seg, 1, 64, 96)
        assert out.seg_batch_index.tolist() == sorted(out.seg_batch_index.tolist())
        # Manually: the hidden state one position before <SEG> in the spliced sequence -> text_hidden_fcs -> SAM.
        row = 0
        col = int((ids[row] == tiny_config.seg_token_id).nonzero()[0, 0]) + tiny_config.vision.tokens - 1
        seg = tiny_model.seg_embedding(out.hidden_states[row, col - 1][None])
        ref = tiny_model.decode_mask(tiny_model.encode_image_sam(sam[:1]), seg, (64, 96))
        torch.testing.assert_close(out.mask_logits[:1], ref, atol=1e-5, rtol=1e-4)
        no_seg = tiny_model(clip, sam, torch.where(ids == tiny_config.seg_token_id, 9, ids))
        assert no_seg.mask_logits.shape == (0, 1, 256, 256)


@pytest.mark.parametrize("square", [False, True])
def test_paired_decoder_matches_sam(tiny_model, tiny_config, tiny_inputs, square):
    """decode_mask on B pairs = SAM's own mask_decoder + postprocess_masks on each pair, also at
    SAM's own size, where decode_mask skips the crop and the resize back (identities) and runs only
    the hypernetwork of the mask it keeps."""
    _, sam_images, _ = tiny_inputs
    sam = tiny_model.model.visual_model
    size = (tiny_config.sam.image_size,) * 2 if square else (100, 150)
    with torch.no_grad():
        embeddings = tiny_model.encode_image_sam(sam_images)
        seg = torch.randn(2, 1, tiny_config.sam.prompt_embed_dim)
        ours = tiny_model.decode_mask(embeddings, seg, size)
        _, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
        for i in range(2):
            low, _ = sam.mask_decoder(image_embeddings=embeddings[i:i + 1], image_pe=sam.prompt_encoder.get_dense_pe(),
                                      sparse_prompt_embeddings=seg[i:i + 1], dense_prompt_embeddings=dense,
                                      multimask_output=False)
            ref = sam.postprocess_masks(low, sam_resize_hw(size, tiny_config.sam.image_size), size)
            torch.testing.assert_close(ours[i:i + 1], ref, atol=1e-5, rtol=1e-4)


def test_clip_tower_takes_the_selected_layer(tiny_model, tiny_inputs):
    clip, _, _ = tiny_inputs
    tower = tiny_model.model.vision_tower
    with torch.no_grad():
        states = tower._clip()(pixel_values=clip, output_hidden_states=True).hidden_states
        assert len(states) == 3  # embeddings + 2 layers
        torch.testing.assert_close(tower(clip), states[-2][:, 1:])


def test_kv_cache_decoding_matches_full_forward(tiny_model, tokenizer, tiny_inputs):
    clip, _, _ = tiny_inputs
    ids = torch.tensor([tokenizer.encode(seg_prompt("the barge moored near two ships"))])
    with torch.no_grad():
        image = tiny_model.encode_image_clip(clip[:1])
        embeds, mask = tiny_model.splice_image_tokens(ids, image)
        logits, _, past = tiny_model.forward_llm(embeds, mask)
        stepped, new = [logits[:, -1]], []
        for _ in range(4):
            token = stepped[-1].argmax(-1)
            new.append(token)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            logits, _, past = tiny_model.forward_llm(tiny_model.embed_tokens(token[:, None]), mask, past)
            stepped.append(logits[:, -1])
        assert past[0][0].shape[2] == embeds.shape[1] + 4
        full_ids = torch.cat([ids, torch.stack(new, 1)], 1)
        embeds, mask = tiny_model.splice_image_tokens(full_ids, image)
        full, hidden, _ = tiny_model.forward_llm(embeds, mask)
        torch.testing.assert_close(torch.stack(stepped, 1), full[:, -5:], atol=1e-5, rtol=1e-4)
        generated, emitted = greedy_decode(tiny_model, clip[:1], ids, 4)
        assert generated.tolist() == [[int(t) for t in new]]
        torch.testing.assert_close(emitted, hidden[:, -5:-1], atol=1e-5, rtol=1e-4)


def test_left_padding_gives_the_same_logits(tiny_model, tokenizer, tiny_inputs):
    clip, _, _ = tiny_inputs
    ids = torch.tensor([tokenizer.encode(seg_prompt("the barge"))])
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1)
    with torch.no_grad():
        image = tiny_model.encode_image_clip(clip[:1])
        alone, _, _ = tiny_model.forward_llm(*tiny_model.splice_image_tokens(ids, image))
        mask = (torch.arange(padded.shape[1]) >= 3).long()[None]
        batch, _, _ = tiny_model.forward_llm(*tiny_model.splice_image_tokens(padded, image, mask))
    torch.testing.assert_close(batch[:, 3:], alone, atol=1e-5, rtol=1e-4)


def test_a_few_training_steps_lower_the_loss(tiny_config, tokenizer, tiny_inputs):
    clip, sam, _ = tiny_inputs
    torch.manual_seed(3)
    model = LisatModel(tiny_config).train()
    ids, labels = (torch.tensor([x]) for x in training_example(tokenizer, "the barge moored near two ships"))
    target = torch.zeros(1, 64, 64)
    target[:, 10:30, 20:50] = 1
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(6):
        out = model(clip[:1], sam[:1], ids, original_size=(64, 64))
        loss = lisat_loss(out, splice_labels(labels, ids, tiny_config), target)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        losses.append(loss["loss"].item())
    assert set(loss) == {"loss", "ce_loss", "mask_bce_loss", "mask_dice_loss"}
    assert losses[-1] < losses[0]
