"""A tiny randomly initialised Stable Diffusion pipeline, for offline smoke tests and benchmarks.

diffusers' own dummy components for its inpainting pipeline tests: a UNet with block widths
(32, 64), a two-block VAE, a 5-layer CLIP text model with hidden size 32 and a tokenizer built
from a two-entry vocabulary. Nothing is downloaded; the weights are random, so the images are
noise, but every code path of loading, sampling and compositing runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def tiny_components(in_channels: int, folder: Path):
    """diffusers' dummy SD-inpainting components (UNet, VAE, 5-layer CLIP text model, 2-entry tokenizer)."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with torch.random.fork_rng():  # model init draws from the global stream; leave it untouched
        torch.manual_seed(0)
        unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                    in_channels=in_channels, out_channels=4,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32)
        vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                            down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                            up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4)
        text = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37,
                                            layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5,
                                            pad_token_id=1, vocab_size=1000))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"), model_max_length=77)
    sched = PNDMScheduler(skip_prk_steps=True, steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text, "tokenizer": tok, "scheduler": sched,
                "safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def save_tiny_pipeline(folder: Path, in_channels: int = 9) -> Path:
    """Save a tiny inpainting (9 input channels) or text-to-image (4) pipeline under ``folder``."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    cls = StableDiffusionInpaintPipeline if in_channels == 9 else StableDiffusionPipeline
    folder = Path(folder)
    cls(**tiny_components(in_channels, folder / "tokenizer-files")).save_pretrained(folder / "pipeline")
    return folder / "pipeline"
