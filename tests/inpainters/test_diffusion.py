"""Diffusion backends on tiny random pipelines saved to a temporary folder (offline, CPU, seconds).

The pipelines use diffusers' own dummy components for its inpainting pipeline tests; they are
loaded back through the backends' real loading code (``model_path=<folder>``).
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import INPAINTERS, load_inpainter
from inpaintlab.inpainters.diffusion import HalfPrecisionOverflowError, resolve_dtype
from inpaintlab.testing import tiny_components

from ..conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close


STEPS = 2
SIZE = 32  # the tiny VAE downsamples by 2: 16x16 latents


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, str]:
    """A 9-channel inpainting pipeline and a 4-channel text-to-image pipeline, saved with save_pretrained."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    root = tmp_path_factory.mktemp("tiny-sd")
    StableDiffusionInpaintPipeline(**tiny_components(9, root / "tok9")).save_pretrained(root / "inpaint")
    StableDiffusionPipeline(**tiny_components(4, root / "tok4")).save_pretrained(root / "t2i")
    return {"inpaint": str(root / "inpaint"), "t2i": str(root / "t2i")}


@pytest.fixture(scope="module")
def sd(saved):
    return load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=STEPS)


def batch(n: int, seed: int = 0, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 3, size, size, generator=g) * 255).round() / 255
    hole = torch.zeros(n, 1, size, size)
    for i in range(n):
        r, c = (4 + 3 * i) % (size // 2), (6 + 5 * i) % (size // 2)
        hole[i, :, r:r + size // 3, c:c + size // 4] = 1
    return x, hole


def gens(seeds) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def assert_faithful(inp) -> None:
    """Output shape; kept pixels equal the input exactly after compositing, while the raw output drifted."""
    x, hole = batch(2)
    out = inp.run(x, hole, generator=gens([0, 1]))
    assert out.images.shape == x.shape and out.images.dtype == torch.float32
    keep = hole.expand_as(x) == 0
    assert torch.equal(out.images[keep], x[keep])
    # The pipeline re-decodes the whole image: the raw output drifts outside the hole.
    assert torch.all(out.kept_drift > 1e-3)
    assert not torch.equal(out.images[~keep], x[~keep])
    req = inp.backend.requirements
    assert req.size_multiple == 2 and req.device == "cpu" and req.value_range == (0.0, 1.0)


def test_loads_saved_pipeline_and_keeps_unmasked_pixels_exactly(sd):
    assert_faithful(sd)


def test_every_diffusion_backend_is_registered_and_marked():
    for name in ["sd2-inpainting", "sd15-inpainting", "sdxl-inpainting", "diffusers", "bld"]:
        assert name in INPAINTERS and INPAINTERS.get(name).needs_weights


def test_mask_convention_matches_diffusers(sd):
    """diffusers' mask_image 1 (white) = repaint, as ours: the UNet's masked image is zero in our hole."""
    pipe = sd.backend.pipe
    seen = {}
    real = pipe.prepare_mask_latents

    def spy(mask, masked_image, *a, **k):
        seen["mask"], seen["masked"] = mask.clone(), masked_image.clone()
        return real(mask, masked_image, *a, **k)

    pipe.prepare_mask_latents = spy
    try:
        x, hole = batch(1)
        sd.run(x, hole, generator=gens([0]))
    finally:
        del pipe.prepare_mask_latents
    assert torch.equal(seen["mask"], hole)
    expected = torch.where(hole.bool(), torch.zeros_like(x), x * 2 - 1)  # [-1, 1], zeroed in the hole
    assert_close(seen["masked"], expected, SHALLOW_RTOL, "masked image")  # two float32 operations


def test_same_seed_same_output_and_another_seed_differs(sd):
    x, hole = batch(1)
    a = sd.run(x, hole, generator=gens([7])).raw
    b = sd.run(x, hole, generator=gens([7])).raw
    c = sd.run(x, hole, generator=gens([8])).raw
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    # no generator: seed 0 per image, never the global random state
    torch.manual_seed(123)
    d = sd.run(x, hole).raw
    torch.manual_seed(456)
    assert torch.equal(d, sd.run(x, hole).raw)


def test_batch_of_four_equals_four_single_calls(sd):
    """Per-trajectory generators: image i depends on generator i only.

    Tolerance DEEP_RTOL of the largest value: batched convolutions round differently for another
    batch size (and CPU), through the text encoder, 2 UNet steps and the VAE decoder; measured
    7e-7 of max |image| here.
    """
    x, hole = batch(4)
    seeds = [11, 12, 13, 14]
    together = sd.run(x, hole, generator=gens(seeds)).raw
    alone = torch.cat([sd.run(x[i:i + 1], hole[i:i + 1], generator=gens([s])).raw for i, s in enumerate(seeds)])
    assert_close(together, alone, DEEP_RTOL, "batch of 4 vs single calls")
    # and the position in the batch does not matter either
    rev = sd.run(x.flip(0), hole.flip(0), generator=gens(seeds[::-1])).raw.flip(0)
    assert_close(together, rev, DEEP_RTOL, "reversed batch")
    # different images really got different noise (not one generator shared)
    assert (together[0] - together[1]).abs().max() > 1e-3


def unet_batch_sizes(backend, run) -> list[int]:
    sizes = []
    h = backend.pipe.unet.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    try:
        run()
    finally:
        h.remove()
    return sizes


def test_guidance_elision_equals_the_literal_computation(saved, sd):
    """Empty prompt, no negative prompt: one UNet pass per step, same result as CFG at 7.5.

    Tolerance DEEP_RTOL of max |image|: the literal computation's two UNet halves differ by
    batched-convolution round-off, which guidance 7.5 amplifies; measured max |diff| 1.2e-6.
    """
    literal = load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=STEPS, literal_guidance=True)
    assert sd.backend.elides_guidance and not literal.backend.elides_guidance
    x, hole = batch(3)
    seeds = [3, 4, 5]
    out = {}
    sizes_e = unet_batch_sizes(sd.backend, lambda: out.setdefault("e", sd.run(x, hole, generator=gens(seeds)).raw))
    sizes_l = unet_batch_sizes(literal.backend, lambda: out.setdefault("l", literal.run(x, hole, generator=gens(seeds)).raw))
    assert sizes_e and set(sizes_e) == {3} and set(sizes_l) == {6} and len(sizes_e) == len(sizes_l)
    assert_close(out["e"], out["l"], DEEP_RTOL, "elided vs literal guidance")
    # CFG at 7.5 with identical embeddings is the unconditional prediction: check against guidance 1 literally
    plain = load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=STEPS, guidance_scale=1.0)
    assert torch.equal(plain.run(x, hole, generator=gens(seeds)).raw, out["e"])


def test_guidance_is_kept_when_the_embeddings_differ(saved):
    """Detection compares the encoded embeddings, not the strings."""
    kw = {"model_path": saved["inpaint"], "steps": STEPS}
    # The two-entry vocabulary encodes every ordinary word as unknown (= end-of-text), so "hello"
    # encodes exactly like "": CFG is a no-op and is elided; a special token changes the encoding.
    assert load_inpainter("sd2-inpainting", prompt="hello", **kw).backend.elides_guidance
    other = "<|startoftext|>"
    assert not load_inpainter("sd2-inpainting", prompt=other, **kw).backend.elides_guidance
    assert load_inpainter("sd2-inpainting", prompt=other, negative_prompt=other, **kw).backend.elides_guidance
    assert not load_inpainter("sd2-inpainting", guidance_scale=1.0, **kw).backend.elides_guidance


def test_padding_mask_crop_changes_only_the_crop(saved):
    inp = load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=STEPS, padding_mask_crop=2)
    x = batch(1)[0]
    hole = torch.zeros(1, 1, SIZE, SIZE)
    hole[..., 8:12, 10:14] = 1
    # diffusers' rule by hand: bounding box (x 10-14, y 8-12) + 2 px = x 8-16, y 6-14, already square
    box = (8, 6, 16, 14)
    from inpaintlab.inpainters.diffusion import crop_boxes
    assert crop_boxes(hole, 2) == [box]
    out = inp.run(x, hole, generator=gens([0]))
    outside = torch.ones_like(x, dtype=torch.bool)
    outside[..., box[1]:box[3], box[0]:box[2]] = False
    assert torch.equal(out.raw[outside], x[outside])
    assert (out.raw[~outside] - x[~outside]).abs().max() > 1e-3
    keep = hole.expand_as(x) == 0
    assert torch.equal(out.images[keep], x[keep])


def test_bld_keeps_the_known_latents(saved):
    """Blended Latent Diffusion: outside the latent hole the final latents equal E(x) exactly."""
    inp = load_inpainter("bld", model_path=saved["t2i"], steps=3)
    backend = inp.backend
    x, hole = batch(2)
    s = backend.sample(x, hole, gens([0, 1]))
    vae = backend.pipe.vae
    with torch.no_grad():
        ref = vae.encode(x * 2 - 1).latent_dist.mean * vae.config.scaling_factor
    assert_close(s.z_known, ref, SHALLOW_RTOL, "z_known")  # the same encoder on the same batch
    # latent hole = any hole pixel in the 2x2 block (independent NumPy block max)
    h = hole[:, 0].numpy()
    ref_hole = h.reshape(2, SIZE // 2, 2, SIZE // 2, 2).max(axis=(2, 4))
    assert np.array_equal(s.hole[:, 0].numpy(), ref_hole)
    known = s.hole.expand_as(s.z0) == 0
    assert torch.equal(s.z0[known], s.z_known[known])
    assert (s.z0[~known] - s.z_known[~known]).abs().max() > 1e-2
    out = inp.run(x, hole, generator=gens([0, 1]))
    keep = hole.expand_as(x) == 0
    assert torch.equal(out.images[keep], x[keep])
    # per-trajectory generators here too; the latents reach |z| ~ 30-40, and batched kernels
    # (VAE encoder, 3 UNet steps) round differently for another batch size or CPU: a tolerance
    # relative to that magnitude (measured 3e-7 of it here, 2.9e-7 on an AMD EPYC)
    single = backend.sample(x[1:], hole[1:], gens([1])).z0
    assert_close(s.z0[1:], single, DEEP_RTOL, "BLD latents, batch of 2 vs single")


def test_bld_with_the_masked_image_keeps_its_latents_and_never_sees_the_hole(saved):
    """known=masked_image (Seamless Borders' BLD): the known latents are s E((2x - 1)(1 - hole)), kept exactly."""
    inp = load_inpainter("bld", model_path=saved["t2i"], steps=3, known="masked_image")
    backend = inp.backend
    x, hole = batch(2)
    s = backend.sample(x, hole, gens([0, 1]))
    vae = backend.pipe.vae
    with torch.no_grad():
        ref = vae.encode((x * 2 - 1) * (1 - hole)).latent_dist.mean * vae.config.scaling_factor
    assert_close(s.z_known, ref, SHALLOW_RTOL, "z_known of the masked image")
    known = s.hole.expand_as(s.z0) == 0
    assert torch.equal(s.z0[known], s.z_known[known])
    other = x * (1 - hole) + (1 - x) * hole  # other hole content: nothing changes
    again = backend.sample(other, hole, gens([0, 1]))
    assert torch.equal(again.z0, s.z0)
    plain = load_inpainter("bld", model_path=saved["t2i"], steps=3).backend.sample(other, hole, gens([0, 1]))
    assert not torch.equal(plain.z_known, s.z_known)  # the original BLD encodes the hole's content


def test_blended_sampling_with_a_perfect_v_model_returns_the_data_latents():
    """The v-prediction path: a model that predicts v of the true z0 ends, through DDIM, at z0 in the hole too."""
    from diffusers import DDIMScheduler

    from inpaintlab.inpainters.blended import sample_blended

    # SD's schedule; set_alpha_to_one so that the last step lands on the predicted x0 itself (SD's config
    # stops at abar_0 = 1 - beta_0, a deliberate sqrt(beta_0) of noise that would hide an error here)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=True, steps_offset=1, prediction_type="v_prediction",
                          timestep_spacing="leading")
    abar = sched.alphas_cumprod.double()
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    z_known = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    hole = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    hole[..., 2:6, 1:5] = 1

    def perfect_v(z, t):
        a = abar[int(t)]
        target = z0 * hole + z_known * (1 - hole)  # the latents the blended chain converges to
        eps = (z - a.sqrt() * target) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * target  # Eq. 3: v = sqrt(abar) eps - sqrt(1 - abar) z0

    out = sample_blended(perfect_v, sched, z_known, hole, gens([3, 4]), steps=10)
    # the scheduler keeps its alphas in float32: agreement to float32 rounding of the coefficients
    assert_close(out, z0 * hole + z_known * (1 - hole), 1e-6, "perfect-v blended DDIM")
    assert torch.equal(out * (1 - hole), z_known * (1 - hole))


def test_bld_refuses_an_inpainting_unet(saved):
    with pytest.raises(InpaintlabError, match="in_channels"):
        load_inpainter("bld", model_path=saved["inpaint"], steps=STEPS)


def test_rip_runs_two_iterations(saved, tmp_path):
    from inpaintlab.rip import RipConfig, run_rip

    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / f"im{k}.png")
    # 32-px cells at 64: 25 % per iteration, so 50 % is two iterations
    cfg = RipConfig(images=str(d), model="sd2-inpainting", model_options={"model_path": saved["inpaint"], "steps": STEPS},
                    mask_sizes=[32], percent=50.0, checkpoint_every=50.0, metrics=["psnr"], size=64,
                    keep_images="none", batch_size=2)
    summary = run_rip(cfg, tmp_path / "run", log=lambda s: None)
    assert summary.trajectories == 2 and summary.calls == 2
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as db:
        rows = db.execute("SELECT image, iteration, value FROM metrics WHERE metric='psnr' ORDER BY image, iteration").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("im0", 0), ("im0", 2), ("im1", 0), ("im1", 2)]
    assert rows[0][2] == float("inf") and np.isfinite(rows[1][2]) and rows[1][2] > 0


def test_missing_model_offline_is_one_line(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = "nobody-here/no-such-inpainting-model"
    with pytest.raises(InpaintlabError) as e:
        load_inpainter("sd2-inpainting", model_path=repo)
    msg = str(e.value)
    assert "\n" not in msg and repo in msg and str(constants.HF_HUB_CACHE) in msg
    assert f"nor is there a local folder {repo}" in msg  # "owner/name" could have meant a folder
    with pytest.raises(InpaintlabError) as e:
        load_inpainter("bld", model_path=str(tmp_path / "nowhere"))
    assert "\n" not in str(e.value) and "nowhere" in str(e.value)


def test_vae_overflow_is_an_error_not_a_black_image(saved):
    inp = load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=STEPS)
    with torch.no_grad():  # simulate a half-precision overflow in the decoder
        inp.backend.pipe.vae.post_quant_conv.weight.mul_(1e38)
    x, hole = batch(1)
    with pytest.raises(HalfPrecisionOverflowError) as e:
        inp.run(x, hole, generator=gens([0]))
    assert "\n" not in str(e.value) and "upcast_vae" in str(e.value)


def test_dtypes_and_bad_options(saved):
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    with pytest.raises(InpaintlabError, match="float16"):
        resolve_dtype("float16", torch.device("cpu"))
    with pytest.raises(InpaintlabError, match="steps"):
        load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=0)
    inp = load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=STEPS, dtype="bfloat16")
    x, hole = batch(1)
    out = inp.run(x, hole, generator=gens([0]))
    assert torch.isfinite(out.raw).all()
    assert inp.backend.pipe.unet.dtype == torch.bfloat16


def test_upcast_vae_decodes_in_float32_and_restores_the_half_vae(saved):
    """upcast_vae: the half-precision VAE decodes in float32 (== a float32 copy of it) and is half again after."""
    import copy

    from inpaintlab.inpainters.diffusion import decode_latents

    inp = load_inpainter("sd2-inpainting", model_path=saved["inpaint"], steps=STEPS, dtype="bfloat16", upcast_vae=True)
    pipe = inp.backend.pipe
    z = torch.randn(1, 4, SIZE // 2, SIZE // 2, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    reference_vae = copy.deepcopy(pipe.vae).float()
    with torch.no_grad():
        reference = (reference_vae.decode(z.float() / pipe.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    upcast = decode_latents(pipe, z, upcast=True)
    assert pipe.vae.dtype == torch.bfloat16
    assert_close(upcast, reference, SHALLOW_RTOL, "upcast decode")  # same weights, same batch, same kernels
    in_half = decode_latents(pipe, z, upcast=False)
    assert (in_half - reference).abs().max() > 1e-4  # bfloat16 decoding differs measurably
