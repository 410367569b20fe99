"""ASUKA's alignment module and its training objective (notes 2.2.2, 2.3, 2.6 items 2-4).

The alignment maps the MAE prior ``F`` (N, L, d) -- (N, 256, 512) for the ViT-B/16 MAE at 256 --
to SD's cross-attention input (N, M, c): a ``Linear(d -> c)`` keeps one condition token per MAE
token (M = L, [P] "set M = N to preserve the local MAE prior"), then self-attention blocks align
the distributions, then a final ``LayerNorm(c)`` ([C] ``get_single_stram_blk_asuka``). Only the
alignment is trained, with SD-inpainting's own eps loss through the frozen UNet (not under
``no_grad``: the gradient reaches the condition through it).

Choices ([D], notes 2.6 item 3): the SD block is a standard pre-LN ViT block (timm layout: fused
``qkv`` with bias, ``proj``, ``fc1``/``fc2`` with GELU, ratio 4) computed with
``F.scaled_dot_product_attention``; heads = width // 64 (at least 1) unless given. Weights are drawn
from an explicit generator (seed 0 when none is given): Linear Xavier-uniform with zero bias,
LayerNorm (1, 0), the ``cross4`` queries N(0, 0.02). Softmax attention is invariant to a shift
shared by all keys, so the key slice of a ``qkv`` (or ``kv``) bias has zero gradient in exact
arithmetic (float round-off only); the query and value slices are trained.

Conventions: ``hole`` 1 = hole, images float [0, 1] NCHW, latents scaled (``s E(x)``), ``hole_r``
the hole on the latent grid, ``alphas_cumprod`` the scheduler's abar indexed by integer timestep,
every random draw from an explicit ``torch.Generator`` (one per sample where it matters).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InpaintlabError
from ..seamless.models import frozen

__all__ = ["VARIANTS", "DEFAULT_BLOCKS", "PROMPT_VARIANT", "default_heads", "AlignBlock", "CrossBlock", "Alignment",
           "LearnedPrompt", "build_alignment", "frozen", "full_prior_probability", "mae_hole", "draw_full_prior",
           "scale_condition", "sd_inpaint_input", "noised_latent", "alignment_loss"]

#: the alignment variants of Table 3 and their default block counts ([P]; ``asuka`` is the method)
DEFAULT_BLOCKS: dict[str, int] = {"asuka": 4, "attn": 1, "linear": 0, "cross4": 4}
VARIANTS = tuple(DEFAULT_BLOCKS)
#: the ``variant`` a :class:`LearnedPrompt`'s config carries, so that :func:`build_alignment` rebuilds both kinds
PROMPT_VARIANT = "prompt"


def default_heads(width: int) -> int:
    """Attention heads for a width: ``width // 64``, at least 1 (SD-1.5: 768 -> 12; notes 2.2.2)."""
    return max(1, int(width) // 64)


def _heads(width: int, heads: int | None) -> int:
    """The head count (given, or :func:`default_heads`), checked to divide the width."""
    h = default_heads(width) if heads is None else int(heads)
    if h < 1 or width % h:
        raise InpaintlabError(f"the alignment width {width} cannot be split into {h} attention heads; "
                              f"give heads that divide it")
    return h


def _init(module: nn.Module, generator: torch.Generator) -> None:
    """Linear Xavier-uniform with zero bias, LayerNorm (1, 0), from ``generator`` (the original MAE's rule)."""
    from .mae import init_linear_and_norm

    init_linear_and_norm(module, generator)


class _MLP(nn.Module):
    """``fc2(GELU(fc1(x)))``, hidden width ``ratio * width``."""

    def __init__(self, width: int, ratio: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(width, ratio * width)
        self.fc2 = nn.Linear(ratio * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(N, L, c) -> (N, heads, L, c / heads)."""
    n, length, c = x.shape
    return x.reshape(n, length, heads, c // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(N, heads, L, c / heads) -> (N, L, c)."""
    n, h, length, d = x.shape
    return x.transpose(1, 2).reshape(n, length, h * d)


class AlignBlock(nn.Module):
    """Pre-LN transformer block: ``x + MHSA(LN(x))``, then ``x + MLP(LN(x))`` (GELU, ratio 4, qkv bias; notes 2.2.2 [D])."""

    def __init__(self, width: int, heads: int | None = None, mlp_ratio: int = 4):
        super().__init__()
        self.width, self.heads = int(width), _heads(int(width), heads)
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=True)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = _MLP(width, mlp_ratio)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention: ``proj(softmax(q k^T / sqrt(d_h)) v)`` per head."""
        q, k, v = (_split(p, self.heads) for p in self.qkv(x).chunk(3, dim=-1))
        return self.proj(_merge(F.scaled_dot_product_attention(q, k, v)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CrossBlock(nn.Module):
    """The ``cross4`` layer: ``q + CrossAttn(LN(q), LN(kv))``, then ``q + MLP(LN(q))`` (pre-LN, notes 2.2.2 [D])."""

    def __init__(self, width: int, heads: int | None = None, mlp_ratio: int = 4):
        super().__init__()
        self.width, self.heads = int(width), _heads(int(width), heads)
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.q = nn.Linear(width, width, bias=True)
        self.kv = nn.Linear(width, 2 * width, bias=True)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = _MLP(width, mlp_ratio)

    def attention(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """Multi-head cross-attention of the queries over the tokens ``kv``."""
        k, v = (_split(p, self.heads) for p in self.kv(kv).chunk(2, dim=-1))
        return self.proj(_merge(F.scaled_dot_product_attention(_split(self.q(q), self.heads), k, v)))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        q = q + self.attention(self.norm_q(q), self.norm_kv(kv))
        return q + self.mlp(self.norm2(q))


class Alignment(nn.Module):
    """ASUKA's alignment ``c_MAE = Align(F)``: (N, L, d) MAE prior -> (N, M, c) SD condition (notes 2.2.2, Table 3).

    Variants: ``asuka`` Linear(d -> c) + 4 :class:`AlignBlock` + LayerNorm(c) (the method);
    ``attn`` the same with 1 block; ``linear`` Linear(d -> c) only (no norm); ``cross4``
    ``queries`` learnable tokens (N(0, 0.02)) that attend to Linear(d -> c)(F) through 4
    :class:`CrossBlock`, + LayerNorm(c). M = L except for ``cross4`` (M = ``queries``).
    ``blocks`` overrides the variant's block count (``linear`` has none), ``heads`` the
    ``c // 64`` default. :meth:`config` gives the keywords that rebuild it.
    """

    def __init__(self, in_dim: int = 512, width: int = 768, variant: str = "asuka", blocks: int | None = None,
                 heads: int | None = None, queries: int = 77, *, generator: torch.Generator | None = None):
        super().__init__()
        if variant not in DEFAULT_BLOCKS:
            raise InpaintlabError(f"unknown alignment variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        n_blocks = DEFAULT_BLOCKS[variant] if blocks is None else int(blocks)
        if variant == "linear" and n_blocks:
            raise InpaintlabError(f"the 'linear' alignment has no blocks, got blocks={blocks}")
        if n_blocks < 0 or int(in_dim) < 1 or int(width) < 1 or int(queries) < 1:
            raise InpaintlabError(f"alignment sizes must be positive: in_dim={in_dim}, width={width}, "
                                  f"blocks={n_blocks}, queries={queries}")
        self.in_dim, self.width, self.variant = int(in_dim), int(width), variant
        self.n_blocks, self.n_queries = n_blocks, int(queries)
        self.n_heads = _heads(self.width, heads)
        self.proj = nn.Linear(self.in_dim, self.width)
        block = CrossBlock if variant == "cross4" else AlignBlock
        self.blocks = nn.ModuleList(block(self.width, self.n_heads) for _ in range(n_blocks))
        self.norm = nn.Identity() if variant == "linear" else nn.LayerNorm(self.width)
        if variant == "cross4":
            self.queries = nn.Parameter(torch.zeros(self.n_queries, self.width))
        generator = torch.Generator().manual_seed(0) if generator is None else generator
        _init(self, generator)
        if variant == "cross4":
            with torch.no_grad():
                nn.init.normal_(self.queries, std=0.02, generator=generator)

    @property
    def tokens(self) -> int | None:
        """The condition's token count when fixed (``cross4``: the queries), else None (M = L)."""
        return self.n_queries if self.variant == "cross4" else None

    def config(self) -> dict[str, Any]:
        """Plain JSON keywords that rebuild this module: ``Alignment(**a.config())``."""
        return {"in_dim": self.in_dim, "width": self.width, "variant": self.variant, "blocks": self.n_blocks,
                "heads": self.n_heads, "queries": self.n_queries}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 3 or features.shape[-1] != self.in_dim:
            raise InpaintlabError(f"the alignment takes MAE features (N, L, {self.in_dim}), "
                                  f"got {tuple(features.shape)}")
        x = self.proj(features.to(self.proj.weight.dtype))
        if self.variant == "cross4":
            q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
            for blk in self.blocks:
                q = blk(q, x)
            return self.norm(q)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class LearnedPrompt(nn.Module):
    """The ``SD-prompt`` baseline (Table 1): a learnable (M, c) token table replacing the text embedding (notes 2.2.2 [D]).

    Initialised from ``embedding`` (the empty-prompt embedding, (1, M, c) or (M, c); SD-1.5: 77 x
    768). It is called like :class:`Alignment`, ``prompt(F)``, and returns its table expanded to
    ``F``'s batch size -- ``F`` is otherwise ignored (an int batch size is accepted too) -- so the
    training loop treats both kinds the same; its MAE features need not be computed.
    """

    def __init__(self, embedding: torch.Tensor):
        super().__init__()
        e = torch.as_tensor(embedding).detach()
        if e.dim() == 3 and e.shape[0] == 1:
            e = e[0]
        if e.dim() != 2 or e.shape[0] < 1 or e.shape[1] < 1:
            raise InpaintlabError(f"a learned prompt starts from an embedding (1, M, c) or (M, c), "
                                  f"got {tuple(torch.as_tensor(embedding).shape)}")
        self.prompt = nn.Parameter(e.clone().float())

    @property
    def tokens(self) -> int:
        return self.prompt.shape[0]

    @property
    def width(self) -> int:
        return self.prompt.shape[1]

    def config(self) -> dict[str, Any]:
        """Plain JSON keywords for :func:`build_alignment` (the table itself is in the state dict)."""
        return {"variant": PROMPT_VARIANT, "tokens": self.tokens, "width": self.width}

    def forward(self, features: torch.Tensor | int) -> torch.Tensor:
        n = int(features) if isinstance(features, int) else int(features.shape[0])
        return self.prompt.unsqueeze(0).expand(n, -1, -1)


def build_alignment(config: Mapping[str, Any], *, generator: torch.Generator | None = None) -> nn.Module:
    """An :class:`Alignment` or :class:`LearnedPrompt` from its :meth:`config` (load the state dict next)."""
    config = dict(config)
    if config.get("variant") == PROMPT_VARIANT:
        try:
            tokens, width = int(config["tokens"]), int(config["width"])
        except (KeyError, TypeError, ValueError):
            raise InpaintlabError(f"a learned-prompt config needs integer 'tokens' and 'width', got {config}") from None
        return LearnedPrompt(torch.zeros(tokens, width))
    allowed = {"in_dim", "width", "variant", "blocks", "heads", "queries"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise InpaintlabError(f"unknown alignment config key(s) {', '.join(unknown)}; "
                              f"expected some of {', '.join(sorted(allowed))}")
    return Alignment(**config, generator=generator)


# full-image prior (notes 2.2.2 "Full-image prior") ----------------------------------------------------

def full_prior_probability(step: int, warmup: int = 2000, start: float = 1.0, end: float = 0.1) -> float:
    """p(step): linear from ``start`` to ``end`` over the first ``warmup`` steps, then ``end`` ([P] warm-up, values [D])."""
    if step < 0 or warmup < 0:
        raise InpaintlabError(f"the full-prior schedule needs step >= 0 and warmup >= 0, got {step} and {warmup}")
    if not (0.0 <= start <= 1.0 and 0.0 <= end <= 1.0):
        raise InpaintlabError(f"full-prior probabilities must lie in [0, 1], got start={start}, end={end}")
    if warmup == 0 or step >= warmup:
        return float(end)
    return float(start + (end - start) * (step / warmup))


def draw_full_prior(n: int, p: float, generators: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
    """(n,) bool: sample i shows the MAE the full image with probability p, ``U[0,1) < p`` from generator i (or one)."""
    if not 0.0 <= p <= 1.0:
        raise InpaintlabError(f"the full-prior probability must lie in [0, 1], got {p}")
    if isinstance(generators, torch.Generator):
        u = torch.rand(n, generator=generators, device=generators.device).cpu()
    else:
        gens = list(generators)
        if len(gens) != n:
            raise InpaintlabError(f"{len(gens)} generators for {n} samples")
        u = torch.stack([torch.rand((), generator=g, device=g.device).cpu() for g in gens]) if gens else torch.zeros(0)
    return u < p


def mae_hole(hole: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    """The hole the MAE sees: all zero where ``full[i]`` (the full image), else ``hole[i]``; the UNet keeps the real hole."""
    full = torch.as_tensor(full, dtype=torch.bool, device=hole.device).reshape(-1)
    if full.shape[0] != hole.shape[0]:
        raise InpaintlabError(f"full-prior flags for {full.shape[0]} samples, holes for {hole.shape[0]}")
    keep = ~full.view(-1, *([1] * (hole.dim() - 1)))
    return torch.where(keep, hole, torch.zeros_like(hole))


# condition scaling -------------------------------------------------------------------------------------

def scale_condition(c: torch.Tensor, null: torch.Tensor | None, w: float) -> torch.Tensor:
    """The released condition weighting ``null + w (c - null)``, computed as ``w c + (1 - w) null`` (exact at w = 0 and 1).

    [C] ``test_asuka_flux.py`` (w = 0.5 there, with a null of the condition's own token count,
    ``txt_256.pt``). ``null`` (M, c), (1, M, c) or (N, M, c) must match ``c``'s tokens and width:
    SD-1.5's 77-token empty-prompt embedding does not fit a 256-token MAE condition and is refused.
    ``null=None`` scales towards zero, ``w c``. w = 1 returns ``c`` itself.
    """
    if w == 1:
        return c
    if null is None:
        return w * c
    null = null.to(c.device, c.dtype)
    if null.dim() == 2:
        null = null.unsqueeze(0)
    if null.dim() != 3 or null.shape[1:] != c.shape[1:] or null.shape[0] not in (1, c.shape[0]):
        raise InpaintlabError(f"the null condition {tuple(null.shape)} does not fit the condition {tuple(c.shape)}: "
                              f"it needs the same tokens and width (a 77-token empty prompt cannot scale a "
                              f"{c.shape[1]}-token condition); pass null=None to scale towards zero")
    return w * c + (1 - w) * null


# the training objective (notes 2.2.2 "Training objective") --------------------------------------------

def sd_inpaint_input(z_t: torch.Tensor, hole_r: torch.Tensor, z_known: torch.Tensor) -> torch.Tensor:
    """SD-inpainting's 9-channel UNet input ``cat[z_t, hole_r, z_known]`` (diffusers: latents, mask, masked-image latents)."""
    if hole_r.dim() != 4 or hole_r.shape[1] != 1 or z_t.shape[0] != hole_r.shape[0] \
            or z_t.shape != z_known.shape or z_t.shape[-2:] != hole_r.shape[-2:]:
        raise InpaintlabError(f"SD-inpainting input needs z_t and z_known of one shape and a (N, 1, h, w) latent hole, "
                              f"got {tuple(z_t.shape)}, {tuple(hole_r.shape)}, {tuple(z_known.shape)}")
    return torch.cat([z_t, hole_r.to(z_t.dtype), z_known], dim=1)


def noised_latent(z0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps, abar_t per sample (DDPM forward process)."""
    a = alphas_cumprod.to(z0.device, z0.dtype)[t.to(alphas_cumprod.device).long()].view(-1, *([1] * (z0.dim() - 1)))
    return a.sqrt() * z0 + (1 - a).sqrt() * eps


def alignment_loss(unet, z0: torch.Tensor, hole_r: torch.Tensor, z_known: torch.Tensor, t: torch.Tensor,
                   eps: torch.Tensor, condition: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """SD's eps loss ``mean((eps - eps_SD(cat[z_t, hole_r, z_known], t, condition))^2)`` (notes 2.2.2, [P]).

    The UNet is frozen by the caller (:func:`frozen`) but run with gradients, so the loss reaches
    ``condition`` and the alignment behind it. ``unet(x, t, encoder_hidden_states=c)`` may return a
    diffusers output (``.sample``) or a tensor.
    """
    z_t = noised_latent(z0, eps, t, alphas_cumprod)
    out = unet(sd_inpaint_input(z_t, hole_r, z_known), t, encoder_hidden_states=condition)
    pred = out.sample if hasattr(out, "sample") else out
    return (eps - pred).pow(2).mean()
