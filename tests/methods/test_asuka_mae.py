"""ASUKA's MAE prior against transformers' own forward and independent NumPy references (notes 2.2.1, 2.5)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from inpaintlab.errors import BadMaskError, InpaintlabError, MissingWeightsError
from inpaintlab.methods.asuka import mae as M

from ..conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close

PATCH, SIZE, L = 8, 32, 16  # the notes' tiny model: 32 px, patch 8 -> 4x4 = 16 tokens


def tiny_config(image_size: int = SIZE):
    """The notes' tiny ViTMAE (section 2.5), as the test states it (not through the preset)."""
    from transformers import ViTMAEConfig

    return ViTMAEConfig(image_size=image_size, patch_size=PATCH, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=16,
                        decoder_num_hidden_layers=8, decoder_num_attention_heads=4, decoder_intermediate_size=32)


@pytest.fixture(scope="module")
def model():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield M.build_mae(tiny_config(), generator=torch.Generator().manual_seed(0))
    torch.set_num_threads(before)


def batch(seed: int = 0):
    """Three images and holes: a ragged rectangle (partial tokens), a corner block, a small spot; 6/4/1 hole tokens."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(3, 3, SIZE, SIZE, generator=g)
    hole = torch.zeros(3, 1, SIZE, SIZE)
    hole[0, :, 3:13, 5:20] = 1
    hole[1, :, 16:, 16:] = 1
    hole[2, :, 9:12, 25:27] = 1
    return images, hole


# --- the original MAE's NumPy position table (facebookresearch/mae util/pos_embed.py), the independent reference ---

def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)
    grid = grid.reshape([2, 1, grid_size, grid_size])
    pos_embed = get_2d_sincos_pos_embed_from_grid(embed_dim, grid)
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed


def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    assert embed_dim % 2 == 0
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # (H*W, D/2)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # (H*W, D/2)
    return np.concatenate([emb_h, emb_w], axis=1)  # (H*W, D)


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    assert embed_dim % 2 == 0
    omega = np.arange(embed_dim // 2, dtype=np.float32)
    omega /= embed_dim / 2.
    omega = 1. / 10000 ** omega  # (D/2,)
    pos = pos.reshape(-1)  # (M,)
    out = np.einsum('m,d->md', pos, omega)  # (M, D/2), outer product
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (M, D)


#: the reference rounds grid position x frequency (up to 31) to float32 before the sine: ~2e-6 at grid 16,
#: 4e-6 at grid 32; a wrong layout (halves or sin/cos swapped, rows for columns) is off by O(1)
SINCOS_ATOL = 8e-6


@pytest.mark.parametrize("dim,grid", [(16, 2), (32, 4), (64, 8), (512, 16), (768, 14), (768, 16), (256, 32)])
def test_mae_sincos_equals_original_numpy(dim, grid):
    ref = get_2d_sincos_pos_embed(dim, grid, cls_token=True)
    ours = M.mae_sincos(dim, grid).double().numpy()
    assert ours.shape == ref.shape == (grid * grid + 1, dim)
    assert np.abs(ours - ref).max() <= SINCOS_ATOL
    assert (ours[0] == 0).all()
    assert np.abs(M.mae_sincos(dim, grid, cls=False).double().numpy() - ref[1:]).max() <= SINCOS_ATOL


def test_import_is_torch_free():
    code = "import sys, inpaintlab.methods.asuka as a; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_presets():
    b = M.mae_config("vit-b16")
    assert (b.image_size, b.patch_size, b.hidden_size, b.num_hidden_layers, b.num_attention_heads) == (256, 16, 768, 12, 12)
    assert (b.decoder_hidden_size, b.decoder_num_hidden_layers, b.decoder_num_attention_heads) == (512, 8, 16)
    assert (b.layer_norm_eps, b.mask_ratio, b.norm_pix_loss) == (1e-6, 0.75, False)
    t = M.mae_config("tiny", image_size=16)
    assert (t.image_size, t.patch_size, t.decoder_num_hidden_layers) == (16, 8, 8)
    with pytest.raises(InpaintlabError):
        M.mae_config("vit-h")


def _positions(net):
    return net.vit.embeddings.position_embeddings[0], net.decoder.decoder_pos_embed[0]


def test_build_writes_sincos_and_tokens(model):
    enc, dec = _positions(model)
    assert enc.abs().sum() > 0 and dec.abs().sum() > 0
    assert torch.equal(enc, M.mae_sincos(32, 4)) and torch.equal(dec, M.mae_sincos(16, 4))
    # transformers 5.24 leaves CLS and mask token at zero; ours are N(0, 0.02)
    for token in (model.vit.embeddings.cls_token, model.decoder.mask_token):
        assert token.abs().min() > 0 and token.std() < 0.1
    again = M.build_mae(tiny_config(), generator=torch.Generator().manual_seed(0))
    other = M.build_mae(tiny_config(), generator=torch.Generator().manual_seed(1))
    state, same, diff = model.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not torch.equal(state["decoder.mask_token"], diff["decoder.mask_token"])


def test_load_smaller_grid_checkpoint(tmp_path):
    small = M.build_mae(tiny_config(16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # a checkpoint whose tables are not sin-cos: the loader must not take them
        for table in _positions(small):
            table.normal_(generator=torch.Generator().manual_seed(4))
    small.save_pretrained(tmp_path / "mae16")
    saved = small.state_dict()
    for size, grid in ((32, 4), (16, 2)):
        big = M.load_mae(str(tmp_path / "mae16"), image_size=size)
        assert big.config.image_size == size and not big.training
        enc, dec = _positions(big)
        assert enc.abs().sum() > 0 and dec.abs().sum() > 0
        assert torch.equal(enc, M.mae_sincos(32, grid)) and torch.equal(dec, M.mae_sincos(16, grid))
        loaded = big.state_dict()
        assert loaded.keys() == saved.keys()
        for key in saved:
            if key not in M.POSITION_KEYS:
                assert torch.equal(loaded[key], saved[key]), key


def test_load_transformers4_layout_checkpoint(tmp_path):
    """A checkpoint with transformers 4.x key names (as facebook/vit-mae-base on the hub) loads completely."""
    from safetensors.torch import save_file

    small = M.build_mae(tiny_config(16), generator=torch.Generator().manual_seed(6))
    small.save_pretrained(tmp_path / "v4")
    renames = [("vit.layers.", "vit.encoder.layer."), ("attention.q_proj", "attention.attention.query"),
               ("attention.k_proj", "attention.attention.key"), ("attention.v_proj", "attention.attention.value"),
               ("attention.o_proj", "attention.output.dense"), ("mlp.fc1", "intermediate.dense"),
               ("mlp.fc2", "output.dense")]
    saved, old = small.state_dict(), {}
    for key, value in saved.items():
        for new_name, old_name in renames:
            key = key.replace(new_name, old_name)
        old[key] = value.contiguous()
    assert "vit.encoder.layer.0.attention.attention.query.weight" in old
    save_file(old, str(tmp_path / "v4" / "model.safetensors"), metadata={"format": "pt"})
    loaded = M.load_mae(str(tmp_path / "v4"), image_size=SIZE).state_dict()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved if k not in M.POSITION_KEYS)


def test_load_errors(tmp_path):
    from transformers import ViTMAEModel

    with pytest.raises(MissingWeightsError) as e:
        M.load_mae(str(tmp_path / "absent"))
    assert "\n" not in str(e.value) and "absent" in str(e.value)
    with pytest.raises(MissingWeightsError) as e:
        M.load_mae("nobody/no-such-mae", local_files_only=True, cache_dir=tmp_path / "hub")
    assert "\n" not in str(e.value) and "nobody/no-such-mae" in str(e.value) and str(tmp_path / "hub") in str(e.value)
    ViTMAEModel(tiny_config()).save_pretrained(tmp_path / "encoder-only")
    with pytest.raises(InpaintlabError, match="decoder"):
        M.load_mae(str(tmp_path / "encoder-only"), image_size=SIZE)


def test_hand_run_matches_transformers(model):
    images, _ = batch()
    x = M.mae_input(images)
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = model(pixel_values=x, noise=noise)
        vit = model.vit(x, noise=noise)
        ids_keep, ids_restore, removed = M.mask_from_noise(noise, model.config.mask_ratio)
        tokens = M.embed_patches(model, x)
        latent = M.encode(model, torch.gather(tokens, 1, ids_keep[..., None].expand(-1, -1, tokens.shape[-1])))
        hidden = M.decoder_tokens(model, vit.last_hidden_state, ids_restore) + model.decoder.decoder_pos_embed
        logits = M.decoder_head(model, M.run_decoder(model, hidden))
        block6 = M.run_decoder(model, hidden, 6)
    assert torch.equal(removed.float(), out.mask) and torch.equal(ids_restore, out.ids_restore)
    assert_close(latent, vit.last_hidden_state, DEEP_RTOL, "hand-run encoder")
    assert_close(logits, out.logits, DEEP_RTOL, "hand-run decoder logits")
    assert block6[:, 1:].shape == (3, L, 16)
    assert torch.equal(M.patchify(x, PATCH), model.patchify(x))
    assert torch.equal(M.unpatchify(out.logits, PATCH), model.unpatchify(out.logits))


def test_prior_features_equal_library_masking_of_visible_tokens(model):
    """Per sample, transformers' own masking keeping exactly the visible tokens (a noise that ranks them first)."""
    images, hole = batch()
    with torch.no_grad():
        feats = M.prior_features(model, images, hole)
    assert feats.shape == (3, L, 16)
    holes = M.token_hole(hole, PATCH)
    x = M.mae_input(images, hole)
    ratio = model.config.mask_ratio
    try:
        for i in range(3):
            visible = int((~holes[i]).sum())
            model.config.mask_ratio = 1 - visible / L  # exact in binary for L = 16
            noise = holes[i:i + 1].float() + torch.arange(L) / (4 * L)
            with torch.no_grad():
                out = model.vit(x[i:i + 1], noise=noise)
                hidden = M.decoder_tokens(model, out.last_hidden_state, out.ids_restore) + model.decoder.decoder_pos_embed
                ref = M.run_decoder(model, hidden, M.FEATURE_LAYER)[:, 1:]
            assert torch.equal(out.mask.bool(), holes[i:i + 1])
            assert_close(feats[i:i + 1], ref, DEEP_RTOL, f"sample {i}")
    finally:
        model.config.mask_ratio = ratio


def test_attention_path_equals_drop_path(model):
    images, hole = batch()
    with torch.no_grad():
        drop = M.prior_features(model, images, hole)
        attention = M.prior_features(model, images, hole, encoder="attention")
    assert_close(attention, drop, DEEP_RTOL, "attention-masked encoder vs dropped hole tokens")


@pytest.mark.parametrize("encoder", ["drop", "attention"])
def test_hole_content_invariance(model, encoder):
    images, hole = batch()
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(11))
    scrambled = torch.where(hole > 0.5, noise, images)
    partial = M.PartialTokenEmbed.for_model(model, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        partial.alpha.fill_(0.3)
        for embed in (None, partial):
            a = M.prior_features(model, images, hole, partial=embed, encoder=encoder)
            b = M.prior_features(model, scrambled, hole, partial=embed, encoder=encoder)
            assert torch.equal(a, b)
    assert not torch.equal(scrambled, images)


def test_mae_input_normalises_then_zeroes_the_hole():
    images, hole = batch()
    mean, std = np.array(M.IMAGENET_MEAN)[:, None, None], np.array(M.IMAGENET_STD)[:, None, None]
    expected = (images.double().numpy() - mean) / std * (1 - hole.double().numpy())
    assert_close(M.mae_input(images, hole), expected, SHALLOW_RTOL, "mae_input")
    assert (M.mae_input(images, hole)[hole.expand(-1, 3, -1, -1) > 0] == 0).all()
    assert_close(M.mae_input(images), (images.double().numpy() - mean) / std, SHALLOW_RTOL, "no hole")


def test_token_hole_and_partial_tokens_equal_numpy():
    rng = np.random.default_rng(0)
    hole = (rng.random((4, 1, SIZE, SIZE)) < 0.02).astype(np.float32)
    hole[0, :, 2:11, 7:30] = 1
    blocks = hole.reshape(4, SIZE // PATCH, PATCH, SIZE // PATCH, PATCH)
    expected = blocks.max(axis=(2, 4)).reshape(4, -1) > 0
    share = blocks.mean(axis=(2, 4)).reshape(4, -1)
    t = torch.from_numpy(hole)
    assert np.array_equal(M.token_hole(t, PATCH).numpy(), expected)
    assert np.array_equal(M.partial_tokens(t, PATCH).numpy(), (share > 0) & (share < 1))


def test_batch_size_independence(model):
    images, hole = batch()
    with torch.no_grad():
        together = M.prior_features(model, images, hole)
        for i in range(3):
            alone = M.prior_features(model, images[i:i + 1], hole[i:i + 1])
            assert_close(alone, together[i:i + 1], DEEP_RTOL, f"sample {i}")
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(3)]  # noqa: E731
    both = M.adaptive_masking(hole, PATCH, gens())
    for i, g in enumerate(gens()):
        one = M.adaptive_masking(hole[i:i + 1], PATCH, [g])
        assert torch.equal(one.noise, both.noise[i:i + 1]) and torch.equal(one.irr_mask, both.irr_mask[i:i + 1])


def test_partial_token_embed_alpha_one_is_a_no_op(model):
    images, hole = batch()
    partial = M.PartialTokenEmbed.for_model(model, generator=torch.Generator().manual_seed(5))
    assert float(partial.alpha.detach()) == 1.0 and partial.proj.weight.abs().sum() > 0
    with torch.no_grad():
        assert torch.equal(M.prior_features(model, images, hole, partial=partial), M.prior_features(model, images, hole))
        loss_with, _ = M.finetune_loss(model, images, hole, torch.Generator().manual_seed(9), partial=partial)
        loss_without, _ = M.finetune_loss(model, images, hole, torch.Generator().manual_seed(9))
        assert torch.equal(loss_with, loss_without)
        partial.alpha.fill_(0.3)  # at block 0 (tokens + positions) exactly the partial tokens change
        a = M.prior_features(model, images, hole, 0, partial=partial)
        b = M.prior_features(model, images, hole, 0)
    changed = (a != b).any(dim=-1)
    assert changed.any() and torch.equal(changed, M.partial_tokens(hole, PATCH))


def test_adaptive_masking(model):
    images, hole = batch()
    holes = M.token_hole(hole, PATCH)
    masking = M.adaptive_masking(hole, PATCH, torch.Generator().manual_seed(0))
    keep = int(L * 0.25)
    assert torch.equal((~masking.removed).sum(dim=1), torch.full((3,), keep))
    assert not (holes & ~masking.removed).any()  # no hole token kept
    with torch.no_grad():  # transformers' random_masking given our noise removes the same tokens
        out = model.vit(M.mae_input(images), noise=masking.noise)
    assert torch.equal(out.mask.bool(), masking.removed)
    again = M.adaptive_masking(hole, PATCH, torch.Generator().manual_seed(0))
    other = M.adaptive_masking(hole, PATCH, torch.Generator().manual_seed(1))
    assert torch.equal(again.noise, masking.noise) and torch.equal(again.irr_mask, masking.irr_mask)
    assert not torch.equal(other.removed, masking.removed)
    # irr_mask by NumPy: hole pixels in removed hole tokens + whole extra removed patches
    h, r, t = hole.numpy()[:, 0], masking.removed.numpy().reshape(3, 4, 4), holes.numpy().reshape(3, 4, 4)
    up = lambda a: np.kron(a.astype(np.float32), np.ones((PATCH, PATCH), np.float32))  # noqa: E731
    expected = np.stack([h[i] * up(r[i] & t[i]) + up(r[i] & ~t[i]) for i in range(3)])[:, None]
    assert np.array_equal(masking.irr_mask.numpy(), expected)
    assert (masking.irr_mask >= hole).all()
    # ViT-B's grid: 256 tokens, 64 kept, never a hole token
    g = torch.Generator().manual_seed(3)
    tokens = torch.rand(4, 256, generator=g) < torch.tensor([0.0, 0.3, 0.6, 0.75])[:, None]
    tokens[3, :] = torch.arange(256) < 192  # exactly 75 %: accepted
    ids_keep, _, removed = M.mask_from_noise(M.adaptive_noise(tokens, g), 0.75)
    assert ids_keep.shape == (4, 64) and torch.equal(removed.sum(dim=1), torch.full((4,), 192))
    assert not (tokens & ~removed).any()


def test_adaptive_masking_refuses_large_holes():
    hole = torch.zeros(2, 1, SIZE, SIZE)
    hole[0, :, :, :] = 1
    hole[0, :, 24:, 8:] = 0  # 13 of 16 tokens: above 75 %
    hole[1, :, :24, :] = 1  # 12 of 16: exactly 75 %, fits
    holes = M.token_hole(hole, PATCH)
    assert holes.sum(dim=1).tolist() == [13, 12]
    assert M.masking_fits(holes).tolist() == [False, True]
    with pytest.raises(BadMaskError, match="redraw"):
        M.adaptive_masking(hole, PATCH, torch.Generator().manual_seed(0))
    M.adaptive_masking(hole[1:], PATCH, torch.Generator().manual_seed(0))


def test_masked_mse_and_finetune_loss(model):
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(2, 3, 8, 8))
    mask = (rng.random((2, 1, 8, 8)) < 0.4).astype(np.float64)
    expected = ((pred - target) ** 2 * mask).sum() / (3 * mask.sum())
    got = M.masked_mse(*(torch.from_numpy(a) for a in (pred, target, mask)))
    assert abs(float(got) - expected) <= 1e-12 * abs(expected)

    images, hole = batch()
    with torch.no_grad():
        loss, masking = M.finetune_loss(model, images, hole, torch.Generator().manual_seed(4))
        x = M.mae_input(images)
        logits = model(pixel_values=x, noise=masking.noise).logits  # the library's forward as the reference
    pred = model.unpatchify(logits).double().numpy()
    m = masking.irr_mask.double().numpy()
    reference = ((pred - x.double().numpy()) ** 2 * m).sum() / (3 * m.sum())
    assert_close(loss, torch.tensor(reference), SHALLOW_RTOL, "fine-tuning loss")
