"""ASUKA (Wang, Cao, Fu, "Towards Stable and Faithful Inpainting", arXiv 2312.04831; official code
Yikai-Wang/asuka-misato): a frozen SD-inpainting UNet guided by a MAE prior instead of text, and a
decoder conditioned on the unmasked pixels.

:mod:`.mae` holds the MAE prior on transformers' ``ViTMAEForPreTraining``: the ViT-B/16 at 256
configuration, the 2-D sin-cos position tables written after every build and load, checkpoint
loading at a new image size, the input preprocessing, the token hole, the decoder features of
block 6 of 8 (the prior), the optional partial-token embedding of the official fine-tuned MAE, and
the fine-tuning objective (adaptive masking, masked MSE over ``irr_mask``). :mod:`.augment` holds
the decoder's colour augmentation (torchvision's ColorJitter semantics, per-sample generators).
:mod:`.align` holds the alignment module, its ablation variants, the SD-prompt baseline's learned
tokens, the full-image prior's schedule and the eps loss through the frozen UNet; :mod:`.decoder`
the mask-unmask consistent decoder (``AsymmetricAutoencoderKL`` whose condition encoder also takes
the hole) and the latent augmentation; :mod:`.method` the training commands ``asuka-mae``,
``asuka-align``, ``asuka-decoder``; :mod:`.sampler` and :mod:`.inpainter` the ``asuka`` inpainter.
The specification of record is ``../shared/methods/asuka-seamless.md``, sections 0 and 2. Names
below load on first use: importing this package does not import torch.
"""

from ...lazy import lazy_exports

_LAZY = {name: "mae" for name in (
    "MAE_HUB", "MAE_PRESETS", "FEATURE_LAYER", "IMAGENET_MEAN", "IMAGENET_STD",
    "POSITION_KEYS", "mae_config", "grid_size", "mae_sincos", "write_position_embeddings", "init_mae_weights", "build_mae", "load_mae",
    "encoder_layers", "decoder_layers", "mae_input", "token_hole", "partial_tokens", "patchify", "unpatchify",
    "embed_patches", "encode", "decoder_tokens", "run_decoder", "decoder_head", "prior_features",
    "PartialTokenEmbed", "masking_fits", "adaptive_noise", "mask_from_noise", "irr_mask", "AdaptiveMasking",
    "adaptive_masking", "masked_mse", "finetune_loss")}
_LAZY |= {name: "augment" for name in ("ColorJitter", "JitterParams", "color_jitter")}
_LAZY |= {name: "align" for name in (
    "Alignment", "AlignBlock", "CrossBlock", "LearnedPrompt", "build_alignment", "full_prior_probability",
    "draw_full_prior", "mae_hole", "scale_condition", "sd_inpaint_input", "alignment_loss")}
_LAZY |= {name: "decoder" for name in (
    "AsukaDecoder", "MaskConcatConditionEncoder", "MaskConcatConditionDecoder", "downsample_hole", "load_asymmetric",
    "from_asymmetric", "from_kl", "encoder_frozen", "one_step_estimate", "latent_augmentation", "ASYM_HUB")}
_LAZY |= {name: "method" for name in ("AsukaMAEMethod", "AsukaAlignMethod", "AsukaDecoderMethod", "MAEPrior")}
_LAZY |= {"asuka_sample": "sampler", "AsukaInpainter": "inpainter"}

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
