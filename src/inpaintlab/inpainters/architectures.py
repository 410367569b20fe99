"""Full-size Stable Diffusion architectures with random weights, for timing without the checkpoints.

A randomly initialised network does exactly the work of the trained one (same layers, same
shapes, same FLOPs), so the throughput benchmark can measure Stable Diffusion's real cost on a
machine that cannot download the weights. The images are noise; nothing else about them is used.

The configurations are those of the published checkpoints (the ``config.json`` files of
``stabilityai/stable-diffusion-2-inpainting``); their parameter counts equal the published ones
(tested on the meta device): UNet 865,925,124 (SD 2's 865,910,724 plus 5 x 320 x 3 x 3 for the
five extra input channels of the masked image and the mask), VAE 83,653,863, OpenCLIP-H text
tower as used by SD 2 (23 of 24 layers) 340,387,840.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..testing import placeholder_tokenizer


@dataclass(frozen=True)
class SDArchitecture:
    """The constructor arguments of a Stable Diffusion checkpoint's three networks."""

    unet: dict
    vae: dict
    text_encoder: dict
    scheduler: dict = field(default_factory=dict)


SD2_INPAINTING_ARCHITECTURE = SDArchitecture(
    unet=dict(in_channels=9, out_channels=4, sample_size=64, layers_per_block=2,
              block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
              down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
              up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
              cross_attention_dim=1024, use_linear_projection=True),
    vae=dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
             block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
             up_block_types=("UpDecoderBlock2D",) * 4),
    # OpenCLIP ViT-H/14's text tower; SD 2 conditions on its penultimate layer, so 23 layers are kept.
    text_encoder=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
                      projection_dim=512, hidden_act="gelu", vocab_size=49408, max_position_embeddings=77,
                      bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
    scheduler=dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                   set_alpha_to_one=False, steps_offset=1),
)

ARCHITECTURES = {"sd2-inpainting": SD2_INPAINTING_ARCHITECTURE}


def build_networks(arch: SDArchitecture, device: str | torch.device = "cpu", seed: int = 0):
    """(unet, vae, text_encoder) with random weights; ``device="meta"`` allocates nothing."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(), torch.device(device):  # initialisation draws from the global stream
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**arch.unet)
        vae = AutoencoderKL(**arch.vae)
        text = CLIPTextModel(CLIPTextConfig(**arch.text_encoder))
    return unet.eval(), vae.eval(), text.eval()


def save_random_pipeline(arch: str | SDArchitecture, folder: Path, *, dtype: torch.dtype = torch.float16) -> Path:
    """Save an inpainting pipeline of architecture ``arch`` (a name or the configs) with random weights.

    Stored in float16 by default (half the disk); ``from_pretrained(dtype=...)`` casts on load.
    Returns the pipeline's folder (``folder/pipeline``).
    """
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline

    if isinstance(arch, str):
        if arch not in ARCHITECTURES:
            raise KeyError(f"no architecture named {arch!r}; known: {', '.join(ARCHITECTURES)}")
        arch = ARCHITECTURES[arch]
    folder = Path(folder)
    unet, vae, text = build_networks(arch)
    pipe = StableDiffusionInpaintPipeline(
        unet=unet.to(dtype), vae=vae.to(dtype), text_encoder=text.to(dtype),
        tokenizer=placeholder_tokenizer(folder / "tokenizer-files"), scheduler=DDIMScheduler(**arch.scheduler),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
