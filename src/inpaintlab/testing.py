"""Test-only builders: tiny randomly initialised Stable Diffusion pipelines, for offline tests and benchmarks.

diffusers' own dummy components for its inpainting pipeline tests: a UNet with block widths
(32, 64), a two-block VAE, a 5-layer CLIP text model with hidden size 32 and a tokenizer built
from a two-entry vocabulary. Nothing is downloaded; the weights are random, so the images are
noise, but every code path of loading, sampling and compositing runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def placeholder_tokenizer(folder: Path):
    """A CLIP tokenizer with only its two special tokens: prompts are padded to 77 tokens all the same.

    The real BPE vocabulary (49,408 entries) is a download; the text encoder's cost depends only
    on the padded length, which is 77 either way.
    """
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"),
                         model_max_length=77)


def tiny_components(in_channels: int, folder: Path):
    """diffusers' dummy SD-inpainting components (UNet, VAE, 5-layer CLIP text model, 2-entry tokenizer)."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

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
    tok = placeholder_tokenizer(folder)
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


def save_tiny_sdxl_pipeline(folder: Path, force_zeros_for_empty_prompt: bool = True, *,
                            requires_aesthetics_score: bool = False) -> Path:
    """Save a tiny SDXL inpainting pipeline (``StableDiffusionXLInpaintPipeline``) under ``folder``.

    diffusers' dummy SDXL-inpainting components (tests/pipelines/stable_diffusion_xl/
    test_stable_diffusion_xl_inpaint.py), with two changes so it has the shape of the real
    ``diffusers/stable-diffusion-xl-1.0-inpainting-0.1``: a 9-channel (inpainting) UNet instead of
    diffusers' 4-channel one, and ``requires_aesthetics_score=False`` by default (the pipeline
    default, and that model's) where diffusers' tests use True (refiner-style conditioning on an
    aesthetic score, available here with ``requires_aesthetics_score=True``). Two text encoders
    (hidden size 32 each, concatenated: cross attention 64), the second with a 32-dimensional
    projection (the pooled embedding); tokenizers built from a two-entry vocabulary, nothing
    downloaded.
    """
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    # The "text_time" added embedding is addition_time_embed_dim * len(add_time_ids) + the pooled
    # embedding's size (text_encoder_2's projection_dim), see the pipeline's _get_add_time_ids.
    # Without the aesthetic score the time ids are original_size (2) + crop top-left (2) +
    # target_size (2) = 6, so 6 * 8 + 32 = 80; diffusers' 72 (= 5 * 8 + 32) goes with its
    # requires_aesthetics_score=True (original_size (2) + crop top-left (2) + aesthetic score = 5 ids).
    time_ids, time_embed_dim, projection_dim = (5 if requires_aesthetics_score else 6), 8, 32
    with torch.random.fork_rng():  # model init draws from the global stream; leave it untouched
        torch.manual_seed(0)
        unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                    in_channels=9, out_channels=4,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                    attention_head_dim=(2, 4), use_linear_projection=True,
                                    addition_embed_type="text_time", addition_time_embed_dim=time_embed_dim,
                                    transformer_layers_per_block=(1, 2),
                                    projection_class_embeddings_input_dim=time_ids * time_embed_dim + projection_dim,
                                    cross_attention_dim=64)
        torch.manual_seed(0)
        vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                            down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                            up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
                            sample_size=128)
        torch.manual_seed(0)
        config = CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37,
                                layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5, pad_token_id=1,
                                vocab_size=1000, hidden_act="gelu", projection_dim=projection_dim)
        text = CLIPTextModel(config)
        text_2 = CLIPTextModelWithProjection(config)
    tokenizer = lambda: placeholder_tokenizer(folder / "tokenizer-files")
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                                   timestep_spacing="leading")
    pipe = StableDiffusionXLInpaintPipeline(vae=vae, text_encoder=text, text_encoder_2=text_2, tokenizer=tokenizer(),
                                            tokenizer_2=tokenizer(), unet=unet, scheduler=sched,
                                            requires_aesthetics_score=requires_aesthetics_score,
                                            force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
                                            add_watermarker=False)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


# -- a tiny trainable method, for the training loop's tests (not registered: tests register it) ------------

def toy_method_class():
    """A two-layer convolutional inpainter trained with L1 in the hole (automatic optimisation).

    Built on first call (it imports Lightning); register it with ``METHODS.register("toy", ...)``.
    It is a module-level class once built, so worker and DDP processes can unpickle it.
    """
    if "ToyMethod" in globals():
        return globals()["ToyMethod"]
    from dataclasses import dataclass

    import torch.nn as nn

    from .options import option
    from .train.method import TrainableMethod

    @dataclass(frozen=True)
    class ToyOptions:
        """The toy method's options."""

        lr: float = option(1e-2, "learning rate (Adam)", gt=0)
        width: int = option(8, "hidden channels", ge=1)

    class ToyMethod(TrainableMethod):
        """A two-layer conv net trained with L1 in the hole (a test's method)."""

        Config = ToyOptions
        val_metrics = ("psnr", "ssim")

        def __init__(self, train, options, log=print):
            super().__init__(train, options, log=log)
            w = options.width
            self.net_g = nn.Sequential(nn.Conv2d(4, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, 3, 3, padding=1),
                                       nn.Sigmoid())

        def generator_config(self):
            return {"width": self.options.width}

        def inpaint(self, images, hole):
            return self.net_g(torch.cat([images * (1 - hole), hole], 1))

        def training_step(self, batch, batch_idx):
            self.count_batch(batch)
            loss = ((self.inpaint(batch["image"], batch["hole"]) - batch["image"]).abs() * batch["hole"]).mean()
            self.log_losses({"train/l1": loss})
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=self.options.lr)

    # module-level names, so that pickle finds them (DataLoader workers, DDP processes)
    for cls in (ToyOptions, ToyMethod):
        cls.__qualname__ = cls.__name__
        globals()[cls.__name__] = cls
    return ToyMethod
