"""Stable Diffusion inpainting backends through diffusers, and Blended Latent Diffusion.

Backends (all batched, one pipeline call per batch, one random generator per image):

- ``sd2-inpainting``: ``stabilityai/stable-diffusion-2-inpainting``, the model of the RIP paper
  (Conde et al. 2024) with its settings: empty prompt, diffusers defaults (50 steps, guidance 7.5,
  strength 1.0), 512x512;
- ``sd15-inpainting``, ``sdxl-inpainting``, and ``diffusers`` (any inpainting repo id or local
  folder through ``model_path``);
- ``bld``: Blended Latent Diffusion (Avrahami et al. 2023) on a plain 4-channel checkpoint.

**Per-trajectory randomness.** diffusers accepts a list of generators, one per image:
``randn_tensor`` draws sample i's initial noise from generator i, and ``_encode_vae_image``
encodes image i alone with generator i. So a trajectory's result does not depend on the batch it
ran in, up to floating-point differences of batched convolutions (measured on CPU, float32, tiny
pipeline: at most 1e-6; tested to 1e-5).

**Guidance elision.** diffusers runs classifier-free guidance iff ``guidance_scale > 1`` and the
UNet has no guidance embedding (``do_classifier_free_guidance = guidance_scale > 1 and
unet.config.time_cond_proj_dim is None``). With an empty prompt and no negative prompt the
unconditional embedding *is* the conditional one (the unconditional branch encodes ``""``), so
``uncond + s * (cond - uncond) = uncond`` and the second UNet pass is wasted. We encode both
prompts once, and where the embeddings are identical call the pipeline with
``guidance_scale=1.0`` (one UNet pass per step, half the work). ``literal_guidance=True`` restores
the literal computation. SDXL pipelines with ``force_zeros_for_empty_prompt`` use a zero
unconditional embedding instead, which differs, so there nothing is elided; nor where the pipeline
conditions on an aesthetic score (``requires_aesthetics_score``, e.g. the SDXL refiner): its
unconditional branch gets ``negative_aesthetic_score`` 2.5 against 6.0 in its time ids, so CFG
changes the result even with identical text embeddings. Measured on the tiny
test pipeline (CPU, float32, 2 steps): elided and literal outputs differ by at most 1.0e-6
(tested to 1e-5). The difference is round-off only: in the literal batch of 2N the two identical
halves come out of the UNet differing by ~1e-6 (batched convolutions), and guidance 7.5
amplifies that difference; mathematically the two are equal.

**Half precision.** ``dtype="auto"`` is float16 on CUDA and float32 elsewhere. A float16 VAE can
overflow and give NaN (black images once clamped); we decode ourselves, check the decoded images
for NaN/inf and raise :class:`HalfPrecisionOverflowError` instead. ``upcast_vae=True`` (or a VAE
whose config sets ``force_upcast``) decodes in float32.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .. import hub
from ..errors import InpaintlabError, MissingWeightsError
from ..hub import is_local_path
from ..options import option
from .base import INPAINTERS, Backend, Generators, Requirements, per_sample_generators
from .blended import BlendedSample, encode_known, latent_hole, sample_blended

SD2_INPAINTING = "stabilityai/stable-diffusion-2-inpainting"
SD15_INPAINTING = "stable-diffusion-v1-5/stable-diffusion-inpainting"
SDXL_INPAINTING = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
BLD_DEFAULT = "stabilityai/stable-diffusion-2-1-base"

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class HalfPrecisionOverflowError(InpaintlabError):
    """A half-precision model produced NaN/inf (which would otherwise be saved as black images)."""


@dataclass(frozen=True)
class DiffusionOptions:
    """The options every diffusion backend takes (defaults: the RIP paper's settings)."""

    model_path: str = option(SD2_INPAINTING, "hub repo id (from the Hugging Face cache) or a local folder written "
                                             "by save_pretrained")
    prompt: str = option("", "text prompt (the RIP paper: empty)")
    negative_prompt: str | None = option(None, "negative prompt (none: unset)")
    steps: int = option(50, "denoising steps", ge=1)
    guidance_scale: float = option(7.5, "classifier-free guidance scale", ge=0)
    strength: float = option(1.0, "how far the hole's latents are noised (1: from pure noise)", gt=0, le=1)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = option(
        "auto", "weights' precision; auto: float16 on CUDA, float32 elsewhere")
    device: str = option("auto", "torch device of the model: auto (CUDA when available), cpu, cuda, cuda:N")
    literal_guidance: bool = option(False, "run both guidance branches even where they are identical")
    padding_mask_crop: int | None = option(None, "inpaint a crop around the hole with this margin in pixels "
                                                 "(none: the whole image)", ge=0)
    local_files_only: bool | None = option(None, "true: only the local cache; false: may download; none: "
                                                 "the cache, then the hub when reachable")
    upcast_vae: bool = option(False, "decode a half-precision VAE in float32")


@dataclass(frozen=True)
class SD15Options(DiffusionOptions):
    """:class:`DiffusionOptions` with Stable Diffusion 1.5 inpainting as the model."""

    model_path: str = option(SD15_INPAINTING, "hub repo id (from the Hugging Face cache) or a local folder")


@dataclass(frozen=True)
class SDXLOptions(DiffusionOptions):
    """:class:`DiffusionOptions` with SDXL inpainting as the model."""

    model_path: str = option(SDXL_INPAINTING, "hub repo id (from the Hugging Face cache) or a local folder")


@dataclass(frozen=True)
class BLDOptions(DiffusionOptions):
    """:class:`DiffusionOptions` with a plain text-to-image SD 2.1 checkpoint as the model."""

    model_path: str = option(BLD_DEFAULT, "hub repo id or local folder of a 4-channel text-to-image pipeline")
    known: Literal["image", "masked_image"] = option(
        "image", "the known latents: image (the original BLD, E(x)) or masked_image (Seamless Borders: E(x) of the "
                 "image with grey holes, so no hole content reaches them)")


# 1. Loading ---------------------------------------------------------------------------------------

def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InpaintlabError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InpaintlabError(f"device {device!r} asked for, but CUDA is not available here; use device=cpu")
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: float16 on CUDA (the usual way to run SD), float32 elsewhere."""
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype == "float16" and device.type == "cpu":
        raise InpaintlabError("dtype float16 needs a GPU (many CPU kernels lack it); use float32 or bfloat16 on the CPU")
    return DTYPES[dtype]


def missing_model_message(repo: str, why: str) -> str:
    """One line: which repo, where it was looked for, and how to get it."""
    # "owner/name" is a repo id unless such a folder exists; say so, in case a folder was meant
    folder = f" (nor is there a local folder {repo})" if repo.count("/") == 1 else ""
    return (f"Stable Diffusion model {repo!r} is not in the Hugging Face cache {hub.hub_cache_dir()}{folder} and "
            f"{why}; download it on a machine with internet (`hf download {repo}`, then copy the cache, or set HF_HOME), "
            f"or pass --option model_path=/path/to/a/saved/pipeline")


@contextlib.contextmanager
def quiet_diffusers():
    """Silence diffusers' and transformers' loading chatter and progress bars (restored afterwards)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    saved = [(log, log.get_verbosity(), log.is_progress_bar_enabled()) for log in (dlog, tlog)]
    for log, _, _ in saved:
        log.set_verbosity_error()
        log.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            # diffusers 0.42 still passes huggingface_hub's deprecated local_dir_use_symlinks
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            yield
    finally:
        for log, verbosity, bars in saved:
            log.set_verbosity(verbosity)
            if bars:
                log.enable_progress_bar()


class _EmptyFloat32Notice(logging.Filter):
    """Drop diffusers' "modules ... that should be kept in float32: []" notice (nothing to keep).

    diffusers 0.42 logs it on every ``ModelMixin.to(dtype)``, and SDXL pipelines move their VAE
    on every call, so a RIP run would print it twice per batch. Non-empty lists still show.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []." not in record.getMessage()


_FLOAT32_NOTICE_FILTER = _EmptyFloat32Notice()


def load_pipeline(pipeline: str, opts: DiffusionOptions, device: torch.device, dtype: torch.dtype):
    """``<pipeline>.from_pretrained`` from a local folder or the hub cache (downloading only when online).

    A hub repo follows :func:`inpaintlab.hub.from_cache_or_hub`: the cache first, then the hub
    only if it is not switched off (``local_files_only=True``, or ``None`` with HF_HUB_OFFLINE)
    and reachable; a missing model is one :class:`MissingWeightsError` line naming the cache.
    """
    import diffusers

    logging.getLogger("diffusers.models.modeling_utils").addFilter(_FLOAT32_NOTICE_FILTER)  # idempotent

    with quiet_diffusers():  # resolving the class imports transformers' image processors, which warn
        cls = getattr(diffusers, pipeline)
    kwargs: dict[str, Any] = {"dtype": dtype, "safety_checker": None, "requires_safety_checker": False}
    src = opts.model_path
    if is_local_path(src):
        folder = Path(src).expanduser()
        if not (folder / "model_index.json").is_file():
            raise MissingWeightsError(f"{folder} is not a saved diffusers pipeline (no model_index.json); "
                                      f"pass a folder written by save_pretrained, or a hub repo id")
        with quiet_diffusers():
            pipe = _from_pretrained(cls, str(folder), kwargs, local_files_only=True, repo=str(folder))
    else:
        pipe = _load_from_hub(cls, src, kwargs, opts.local_files_only)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_from_hub(cls, repo: str, kwargs: dict, local_files_only: bool | None):
    """Cache first; the network only when allowed and reachable (the rule of :mod:`inpaintlab.hub`)."""
    with quiet_diffusers():
        try:
            return hub.from_cache_or_hub(
                lambda local_only: cls.from_pretrained(repo, local_files_only=local_only, **kwargs),
                local_files_only=local_files_only)
        except hub.HubUnavailable as e:
            raise MissingWeightsError(missing_model_message(repo, e.why)) from None
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise MissingWeightsError(missing_model_message(repo, f"the download failed ({first})")) from None


def _from_pretrained(cls, src: str, kwargs: dict, *, local_files_only: bool, repo: str, why: str = ""):
    """``cls.from_pretrained`` with a missing or broken model turned into one line."""
    try:
        return cls.from_pretrained(src, local_files_only=local_files_only, **kwargs)
    except (OSError, ValueError) as e:
        if why:
            raise MissingWeightsError(missing_model_message(repo, why)) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MissingWeightsError(f"cannot load the diffusers pipeline in {src}: {first}") from None


# 2. Shared pieces -------------------------------------------------------------------------------

def embeddings_identical(pipe, prompt: str, negative_prompt: str | None) -> bool:
    """Whether the pipeline's unconditional embedding equals its conditional one (CFG is then a no-op)."""
    with torch.no_grad():
        out = pipe.encode_prompt(prompt=prompt, device=pipe.device, num_images_per_prompt=1,
                                 do_classifier_free_guidance=True, negative_prompt=negative_prompt)
    if len(out) == 2:  # SD 1.x / 2.x: (cond, uncond)
        return torch.equal(out[0], out[1])
    # SDXL: (cond, uncond, pooled cond, pooled uncond); zeros for uncond under force_zeros_for_empty_prompt.
    # The UNet's added conditioning also takes time ids, which differ between the branches when the
    # pipeline conditions on an aesthetic score (6.0 vs negative 2.5 by default): never a no-op then.
    if pipe.config.get("requires_aesthetics_score", False):
        return False
    return torch.equal(out[0], out[1]) and torch.equal(out[2], out[3])


def decode_latents(pipe, latents: torch.Tensor, *, upcast: bool = False) -> torch.Tensor:
    """Latents -> images in [0, 1] with the pipeline's VAE; NaN/inf is an error, not a black image."""
    if not torch.isfinite(latents).all():
        raise HalfPrecisionOverflowError(
            f"the UNet produced NaN/inf latents in {latents.dtype}; rerun with --option dtype=float32 (or bfloat16)")
    vae = pipe.vae
    half = vae.dtype in (torch.float16, torch.bfloat16)
    upcast = half and (upcast or (vae.dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))))
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        c = latents.shape[1]
        mean = torch.tensor(mean, device=latents.device).view(1, c, 1, 1)
        std = torch.tensor(std, device=latents.device).view(1, c, 1, 1)
        z = latents.float() * std / vae.config.scaling_factor + mean
    else:
        z = latents.float() / vae.config.scaling_factor
    dtype = vae.dtype
    try:
        if upcast:
            vae.to(torch.float32)
        with torch.no_grad():
            image = vae.decode(z.to(vae.dtype), return_dict=False)[0]
    finally:
        if upcast:
            vae.to(dtype)
    if not torch.isfinite(image).all():
        raise HalfPrecisionOverflowError(
            f"the VAE decoder overflowed in {vae.dtype} (NaN/inf, which would be saved as black images); "
            f"rerun with --option upcast_vae=true or --option dtype=float32")
    return (image.float() / 2 + 0.5).clamp(0, 1)


def crop_boxes(hole: torch.Tensor, pad: int) -> list[tuple[int, int, int, int]]:
    """Per image, diffusers' ``padding_mask_crop`` box: the hole's bounding box plus ``pad``, at the image's aspect."""
    from diffusers.image_processor import VaeImageProcessor
    from PIL import Image

    h, w = hole.shape[-2:]
    boxes = []
    for m in hole[:, 0].detach().cpu().numpy():
        pil = Image.fromarray(((m > 0.5) * 255).astype(np.uint8))
        boxes.append(tuple(int(v) for v in VaeImageProcessor.get_crop_region(pil, w, h, pad=pad)))
    return boxes


def crop_and_resize(images: torch.Tensor, hole: torch.Tensor, boxes) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each image's box and resize it to the full working size (bicubic; the hole nearest)."""
    h, w = images.shape[-2:]
    xs, ms = [], []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        xs.append(F.interpolate(images[i:i + 1, :, y1:y2, x1:x2], size=(h, w), mode="bicubic",
                                antialias=True, align_corners=False).clamp(0, 1))
        ms.append((F.interpolate(hole[i:i + 1, :, y1:y2, x1:x2], size=(h, w), mode="nearest") > 0.5).float())
    return torch.cat(xs), torch.cat(ms)


def paste_crops(images: torch.Tensor, crops: torch.Tensor, boxes) -> torch.Tensor:
    """Resize each generated crop back to its box and paste it into (a copy of) its image."""
    out = images.clone()
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        out[i, :, y1:y2, x1:x2] = F.interpolate(crops[i:i + 1].to(out.dtype), size=(y2 - y1, x2 - x1), mode="bicubic",
                                                antialias=True, align_corners=False).clamp(0, 1)[0]
    return out


# 3. Backends ------------------------------------------------------------------------------------

class DiffusionBackend(Backend):
    """Common to the diffusion backends: options, device/dtype, guidance elision, cropping."""

    Options = DiffusionOptions
    needs_weights = True
    pipeline_class = "StableDiffusionInpaintPipeline"

    def __init__(self, options: DiffusionOptions | None = None, **values):
        super().__init__(options, **values)
        self.opts = opts = self.options
        self.device = resolve_device(opts.device)
        self.dtype = resolve_dtype(opts.dtype, self.device)
        self.pipe = load_pipeline(self.pipeline_class, opts, self.device, self.dtype)
        # size multiple: the VAE's downsampling factor (8 for Stable Diffusion)
        self.requirements = Requirements(size_multiple=int(self.pipe.vae_scale_factor), value_range=(0.0, 1.0),
                                         device=str(self.device))
        self._elide: bool | None = None

    @property
    def elides_guidance(self) -> bool:
        """Whether a call runs one UNet branch because CFG would change nothing (see module docstring)."""
        if self._elide is None:
            cfg_on = self.opts.guidance_scale > 1 and self.pipe.unet.config.get("time_cond_proj_dim") is None
            self._elide = (cfg_on and not self.opts.literal_guidance
                           and embeddings_identical(self.pipe, self.opts.prompt, self.opts.negative_prompt))
        return self._elide

    @property
    def effective_guidance_scale(self) -> float:
        return 1.0 if self.elides_guidance else float(self.opts.guidance_scale)

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """Fill ``hole`` (1 = hole) in ``images`` in [0, 1]; one pipeline call for the whole batch."""
        gens = per_sample_generators(generator, images.shape[0])
        if self.opts.padding_mask_crop is None:
            return self.generate(images, hole, gens)
        boxes = crop_boxes(hole, self.opts.padding_mask_crop)
        x, m = crop_and_resize(images, hole, boxes)
        return paste_crops(images, self.generate(x, m, gens), boxes)

    def generate(self, images: torch.Tensor, hole: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        raise NotImplementedError


class DiffusersInpaintBackend(DiffusionBackend):
    """A diffusers inpainting pipeline (SD 1.5 / 2 inpainting, SDXL inpainting, any AutoPipeline)."""

    def generate(self, images: torch.Tensor, hole: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        """One pipeline call; diffusers' mask convention is ours (white = 1 = repaint)."""
        n, _, h, w = images.shape
        o = self.opts
        with torch.no_grad():
            latents = self.pipe(
                prompt=[o.prompt] * n,
                negative_prompt=None if o.negative_prompt is None else [o.negative_prompt] * n,
                image=images.float(), mask_image=hole.float(), height=h, width=w,
                num_inference_steps=o.steps, guidance_scale=self.effective_guidance_scale, strength=float(o.strength),
                generator=gens, output_type="latent",
            ).images
        return decode_latents(self.pipe, latents, upcast=o.upcast_vae)


class BlendedLatentBackend(DiffusionBackend):
    """Blended Latent Diffusion (Avrahami et al. 2023; Seamless Borders Sec. 3.2) on a 4-channel checkpoint."""

    Options = BLDOptions
    pipeline_class = "StableDiffusionPipeline"

    def __init__(self, options: BLDOptions | None = None, **values):
        super().__init__(options, **values)
        opts = self.opts
        if self.pipe.unet.config.in_channels != self.pipe.vae.config.latent_channels:
            raise InpaintlabError(
                f"bld needs a plain text-to-image checkpoint (UNet in_channels {self.pipe.vae.config.latent_channels}); "
                f"{opts.model_path} has {self.pipe.unet.config.in_channels} (an inpainting UNet: use the 'diffusers' backend)")
        self._embeds: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def prompt_embeddings(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(cond, uncond or None when CFG is off or elided), each (1, L, D), computed once."""
        if self._embeds is None:
            cfg = self.effective_guidance_scale > 1
            with torch.no_grad():
                cond, uncond = self.pipe.encode_prompt(self.opts.prompt, self.device, 1, cfg, self.opts.negative_prompt)
            self._embeds = (cond, uncond if cfg else None)
        return self._embeds

    def sample(self, images: torch.Tensor, hole: torch.Tensor, gens: list[torch.Generator]) -> BlendedSample:
        """Encode the known image, sample with blending at every step; the latents before decoding."""
        pipe, n = self.pipe, images.shape[0]
        cond, uncond = self.prompt_embeddings()
        scale = self.effective_guidance_scale
        emb = cond.expand(n, -1, -1) if uncond is None else torch.cat([uncond.expand(n, -1, -1), cond.expand(n, -1, -1)])

        def model_fn(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            """The UNet's output, with classifier-free guidance (Ho & Salimans 2022, Eq. 6) when on."""
            zin = z if uncond is None else torch.cat([z, z])
            out = pipe.unet(zin, t, encoder_hidden_states=emb, return_dict=False)[0]
            if uncond is None:
                return out
            e_u, e_c = out.chunk(2)
            return e_u + scale * (e_c - e_u)

        with torch.no_grad():
            z_known = encode_known(pipe.vae, images, hole if self.opts.known == "masked_image" else None)
            z_known = z_known.to(self.dtype)
            m = latent_hole(hole, int(pipe.vae_scale_factor)).to(z_known.device, z_known.dtype)
            z0 = sample_blended(model_fn, pipe.scheduler, z_known, m, gens, steps=self.opts.steps,
                                strength=float(self.opts.strength), step_kwargs=pipe.prepare_extra_step_kwargs(gens, 0.0))
        return BlendedSample(z0=z0, z_known=z_known, hole=m)

    def generate(self, images: torch.Tensor, hole: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        return decode_latents(self.pipe, self.sample(images, hole, gens).z0, upcast=self.opts.upcast_vae)


# 4. Registry ------------------------------------------------------------------------------------

@INPAINTERS.register("sd2-inpainting")
class SD2Inpainting(DiffusersInpaintBackend):
    """Stable Diffusion 2 inpainting (the RIP paper's model and settings), diffusers."""


@INPAINTERS.register("sd15-inpainting")
class SD15Inpainting(DiffusersInpaintBackend):
    """Stable Diffusion 1.5 inpainting, diffusers."""

    Options = SD15Options


@INPAINTERS.register("sdxl-inpainting")
class SDXLInpainting(DiffusersInpaintBackend):
    """Stable Diffusion XL inpainting (AutoPipelineForInpainting; 1024x1024 native), diffusers."""

    Options = SDXLOptions
    pipeline_class = "AutoPipelineForInpainting"


@INPAINTERS.register("diffusers")
class AnyDiffusersInpainting(DiffusersInpaintBackend):
    """Any diffusers inpainting pipeline: a hub repo id or a local folder (model_path)."""

    pipeline_class = "AutoPipelineForInpainting"


@INPAINTERS.register("bld")
class BLD(BlendedLatentBackend):
    """Blended Latent Diffusion (Avrahami et al. 2023) on a 4-channel SD checkpoint."""


__all__ = [
    "BlendedLatentBackend",
    "DiffusersInpaintBackend",
    "DiffusionBackend",
    "DiffusionOptions",
    "HalfPrecisionOverflowError",
    "BLD",
    "AnyDiffusersInpainting",
    "SD2Inpainting",
    "SD15Inpainting",
    "SDXLInpainting",
    "crop_boxes",
    "decode_latents",
    "embeddings_identical",
    "load_pipeline",
]
