"""The sdxl-inpainting backend on tiny random SDXL pipelines (offline, CPU, seconds).

The pipelines are saved by ``save_tiny_sdxl_pipeline`` (diffusers' dummy SDXL-inpainting
components, 9-channel UNet) into a temporary folder and loaded back from that folder through
the backend's real loading code (a local path: ``local_files_only=True``; the offline guard in
tests/conftest.py fails any test that opens a network connection).
"""

from __future__ import annotations

import pytest
import torch

from inpaintlab.inpainters import load_inpainter
from inpaintlab.inpainters.diffusion import embeddings_identical
from inpaintlab.testing import save_tiny_sdxl_pipeline

from ..conftest import DEEP_RTOL, assert_close
from .test_diffusion import STEPS, assert_faithful, batch, gens, unet_batch_sizes

CPU = {"device": "cpu", "dtype": "float32", "steps": STEPS}


@pytest.fixture(scope="module")
def saved_xl(tmp_path_factory) -> dict[str, str]:
    """SDXL default (zero unconditional embedding for an empty prompt), without it, and aesthetic-score conditioned."""
    root = tmp_path_factory.mktemp("tiny-sdxl")
    return {"zeros": str(save_tiny_sdxl_pipeline(root / "zeros")),
            "no-zeros": str(save_tiny_sdxl_pipeline(root / "no-zeros", force_zeros_for_empty_prompt=False)),
            "aesthetic": str(save_tiny_sdxl_pipeline(root / "aesthetic", force_zeros_for_empty_prompt=False,
                                                     requires_aesthetics_score=True))}


@pytest.fixture(scope="module")
def xl(saved_xl):
    return load_inpainter("sdxl-inpainting", model_path=saved_xl["zeros"], **CPU)


def encoded(pipe) -> tuple[torch.Tensor, ...]:
    """(cond, uncond, pooled cond, pooled uncond) for the empty prompt, as the pipeline computes them."""
    with torch.no_grad():
        return pipe.encode_prompt(prompt="", device=pipe.device, num_images_per_prompt=1,
                                  do_classifier_free_guidance=True, negative_prompt=None)


def test_sdxl_loads_and_keeps_unmasked_pixels_exactly(xl):
    pipe = xl.backend.pipe
    assert type(pipe).__name__ == "StableDiffusionXLInpaintPipeline" and pipe.unet.config.in_channels == 9
    assert_faithful(xl)


def test_sdxl_same_seed_same_output_and_batch_equals_single_calls(xl):
    """Per-trajectory generators (tolerance DEEP_RTOL of max |image|: batched-convolution round-off, as for SD)."""
    x, hole = batch(2)
    seeds = [11, 12]
    together = xl.run(x, hole, generator=gens(seeds)).raw
    assert torch.equal(together, xl.run(x, hole, generator=gens(seeds)).raw)
    alone = torch.cat([xl.run(x[i:i + 1], hole[i:i + 1], generator=gens([s])).raw for i, s in enumerate(seeds)])
    assert_close(together, alone, DEEP_RTOL, "batch of 2 vs single calls")
    other = xl.run(x, hole, generator=gens([13, 14])).raw
    assert (together - other).abs().max() > 1e-3


def test_sdxl_zero_unconditional_embedding_keeps_guidance(saved_xl, xl):
    """force_zeros_for_empty_prompt (SDXL's default): uncond = zeros != cond, so CFG is real and runs."""
    cond, uncond, pooled, pooled_uncond = encoded(xl.backend.pipe)
    assert not uncond.any() and not pooled_uncond.any()
    assert cond.abs().max() > 0 and pooled.abs().max() > 0
    assert not embeddings_identical(xl.backend.pipe, "", None)
    assert not xl.backend.elides_guidance and xl.backend.effective_guidance_scale == 7.5
    x, hole = batch(2)
    out = {}
    sizes = unet_batch_sizes(xl.backend, lambda: out.setdefault("cfg", xl.run(x, hole, generator=gens([3, 4])).raw))
    assert sizes and set(sizes) == {4}  # both branches, every step
    # and CFG changes the result: it is not the guidance-1 output
    plain = load_inpainter("sdxl-inpainting", model_path=saved_xl["zeros"], guidance_scale=1.0, **CPU)
    assert (plain.run(x, hole, generator=gens([3, 4])).raw - out["cfg"]).abs().max() > 1e-3


def test_sdxl_identical_embeddings_elide_guidance(saved_xl):
    """Without the zeroing an empty prompt's uncond embeddings are the cond ones: elided = literal.

    Tolerance DEEP_RTOL of max |image| as for SD (the literal batch's identical halves differ by round-off).
    """
    path = saved_xl["no-zeros"]
    elided = load_inpainter("sdxl-inpainting", model_path=path, **CPU)
    literal = load_inpainter("sdxl-inpainting", model_path=path, literal_guidance=True, **CPU)
    cond, uncond, pooled, pooled_uncond = encoded(elided.backend.pipe)
    assert torch.equal(cond, uncond) and torch.equal(pooled, pooled_uncond)
    assert elided.backend.elides_guidance and not literal.backend.elides_guidance
    x, hole = batch(2)
    seeds = [5, 6]
    out = {}
    sizes_e = unet_batch_sizes(elided.backend, lambda: out.setdefault("e", elided.run(x, hole, generator=gens(seeds)).raw))
    sizes_l = unet_batch_sizes(literal.backend, lambda: out.setdefault("l", literal.run(x, hole, generator=gens(seeds)).raw))
    assert sizes_e and set(sizes_e) == {2} and set(sizes_l) == {4} and len(sizes_e) == len(sizes_l)
    assert_close(out["e"], out["l"], DEEP_RTOL, "elided vs literal guidance")
    plain = load_inpainter("sdxl-inpainting", model_path=path, guidance_scale=1.0, **CPU)
    assert torch.equal(plain.run(x, hole, generator=gens(seeds)).raw, out["e"])


def test_sdxl_aesthetic_score_keeps_guidance(saved_xl):
    """requires_aesthetics_score (refiner-style): the uncond branch gets aesthetic score 2.5 against
    6.0, so CFG is not a no-op even though the text embeddings are identical; nothing is elided."""
    path = saved_xl["aesthetic"]
    inp = load_inpainter("sdxl-inpainting", model_path=path, **CPU)
    cond, uncond, pooled, pooled_uncond = encoded(inp.backend.pipe)
    assert torch.equal(cond, uncond) and torch.equal(pooled, pooled_uncond)
    assert not inp.backend.elides_guidance
    x, hole = batch(1)
    cfg = inp.run(x, hole, generator=gens([0])).raw
    plain = load_inpainter("sdxl-inpainting", model_path=path, guidance_scale=1.0, **CPU)
    assert (plain.run(x, hole, generator=gens([0])).raw - cfg).abs().max() > 1e-3
