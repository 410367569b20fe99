"""Full-size SD architectures with random weights (the throughput benchmark's stand-in for the checkpoints)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inpaintlab.inpainters import load_inpainter
from inpaintlab.inpainters.architectures import (
    SD2_INPAINTING_ARCHITECTURE,
    build_networks,
    count_parameters,
    save_random_pipeline,
)


def test_sd2_inpainting_parameter_counts_equal_the_published_checkpoint():
    """Built on the meta device (no memory): the counts of stabilityai/stable-diffusion-2-inpainting's networks."""
    unet, vae, text = build_networks(SD2_INPAINTING_ARCHITECTURE, device="meta")
    # SD 2's UNet has 865,910,724 parameters; the inpainting UNet's conv_in takes 9 channels instead of 4.
    assert count_parameters(unet) == 865_910_724 + 5 * 320 * 3 * 3
    assert unet.conv_in.weight.shape == (320, 9, 3, 3)
    assert count_parameters(vae) == 83_653_863
    assert count_parameters(text) == 340_387_840
    assert int(2 ** (len(vae.config.block_out_channels) - 1)) == 8  # 512x512 images -> 64x64 latents


def test_random_pipeline_saves_and_loads_through_the_backend(tmp_path):
    """The saving path, on the architecture scaled down (same code, seconds instead of minutes)."""
    small = dataclasses.replace(
        SD2_INPAINTING_ARCHITECTURE,
        unet={**SD2_INPAINTING_ARCHITECTURE.unet, "block_out_channels": (32, 64), "attention_head_dim": (2, 4),
              "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
              "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"), "cross_attention_dim": 32, "sample_size": 16},
        vae={**SD2_INPAINTING_ARCHITECTURE.vae, "block_out_channels": (32, 64),
             "down_block_types": ("DownEncoderBlock2D",) * 2, "up_block_types": ("UpDecoderBlock2D",) * 2},
        text_encoder={**SD2_INPAINTING_ARCHITECTURE.text_encoder, "hidden_size": 32, "intermediate_size": 37,
                      "num_attention_heads": 4, "num_hidden_layers": 2, "projection_dim": 32},
    )
    path = save_random_pipeline(small, tmp_path)
    inp = load_inpainter("sd2-inpainting", model_path=str(path), steps=2)
    assert inp.backend.pipe.unet.dtype == torch.float32  # saved in float16, cast back on a CPU
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:20, 8:20] = 1
    out = inp.run(x, hole, generator=[torch.Generator().manual_seed(0)])
    assert out.images.shape == x.shape and torch.isfinite(out.images).all()
    assert torch.equal(out.images[hole.expand_as(x) == 0], x[hole.expand_as(x) == 0])
    # an empty prompt through the placeholder tokenizer: identical embeddings, so guidance is elided
    assert inp.backend.elides_guidance


def test_unknown_architecture_names_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="sd2-inpainting"):
        save_random_pipeline("sd9", tmp_path)
