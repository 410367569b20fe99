"""Exemplar-based inpainting with multi-scale PatchMatch (pure NumPy).

The method is the image-completion application of

* Barnes, Shechtman, Finkelstein, Goldman, "PatchMatch: A Randomized Correspondence Algorithm
  for Structural Image Editing", SIGGRAPH 2009 (the nearest-neighbour field search, Sec. 3, and
  its use for hole filling, Sec. 4), and
* Wexler, Shechtman, Irani, "Space-Time Completion of Video", TPAMI 2007 (the global
  coherence objective, Eq. 1, optimised by alternating a nearest-neighbour search with a
  weighted *voting* step, Eq. 3-5, coarse to fine, Sec. 3.2-3.3),

with the onion-peel initialisation of Newson, Almansa, Fradet, Gousseau, Perez, "Video
Inpainting of Complex Scenes", SIAM J. Imaging Sci. 2014 (Sec. 4.1).

Steps, at every level of a masked area pyramid from the coarsest to the finest:

1. initialise the hole: onion peel (or a push-pull diffusion fill) at the coarsest level, the
   upsampled result of the level below otherwise; the NNF is upsampled too (random where that
   is not valid);
2. E-like step: PatchMatch finds, for every target patch that overlaps the hole, a source patch
   lying entirely in the known region (random init, propagation, random search);
3. M-like step: every hole pixel becomes the weighted average of the pixels that the source
   patches of all target patches covering it put there (voting; weights = similarity times a
   confidence that decays with the distance into the hole);
4. repeat 2-3 a few times, then go one level finer.

Known pixels are never written. Everything is vectorised over patches: propagation evaluates
the candidates of all patches at once (a Jacobi / jump-flooding variant of Barnes' sequential
scan), and patch distances are sums of squared differences over gathered patch vectors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from ..options import option
from .base import INPAINTERS, NumpyBackend

__all__ = ["PatchMatchBackend", "PatchMatchOptions", "PatchMatcher", "nnf_search"]


# ----------------------------------------------------------------------------------------------
# small image helpers
# ----------------------------------------------------------------------------------------------


def _box_sum(a: np.ndarray, p: int) -> np.ndarray:
    """Sum of ``a`` over every ``p x p`` window, indexed by the window's top-left corner.

    Integral image (summed-area table); output shape ``(H - p + 1, W - p + 1)``.
    """
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(a, axis=0), axis=1, out=s[1:, 1:])
    return s[p:, p:] - s[:-p, p:] - s[p:, :-p] + s[:-p, :-p]


def _downsample(img: np.ndarray, hole: np.ndarray, strict: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One level of a masked 2x2 area pyramid: coarse value = mean of the known children.

    ``strict``: a coarse pixel is known only when its four children are known (so the
    completion pyramid never trusts a half-unknown pixel); otherwise when any child is.
    """
    h, w = hole.shape
    ph, pw = h % 2, w % 2
    if ph or pw:  # replicate the last row/column (and its hole flag) to an even size
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
        hole = np.pad(hole, ((0, ph), (0, pw)), mode="edge")
    known = (~hole).astype(np.float32)
    H2, W2 = img.shape[0] // 2, img.shape[1] // 2
    s = (img * known[..., None]).reshape(H2, 2, W2, 2, 3).sum(axis=(1, 3))
    c = known.reshape(H2, 2, W2, 2).sum(axis=(1, 3))
    out = s / np.maximum(c, 1.0)[..., None]
    return out.astype(np.float32), (c < 4) if strict else (c == 0)


def _upsample(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """2x bilinear upsampling aligned with :func:`_downsample`'s pixel centres, cropped to ``shape``."""
    h, w = img.shape[:2]
    H, W = shape

    def coords(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # fine pixel i has centre (i + 0.5) / 2 - 0.5 in coarse pixel units
        x = (np.arange(n_out) + 0.5) / 2.0 - 0.5
        x = np.clip(x, 0, n_in - 1)
        i0 = np.floor(x).astype(np.intp)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (x - i0).astype(np.float32)

    y0, y1, fy = coords(H, h)
    x0, x1, fx = coords(W, w)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bot = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return (top * (1 - fy)[:, None, None] + bot * fy[:, None, None]).astype(np.float32)


def _push_pull_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` by push-pull interpolation (a multigrid stand-in for membrane diffusion).

    Known pixels are averaged down a pyramid until no hole is left, then the coarse values are
    upsampled into the holes level by level. Used as the coarsest-level initial guess, as
    Wexler et al. 2007 (Sec. 3.3) start the coarsest level from a smooth interpolation.
    """
    if not hole.any():
        return img
    if hole.all():
        raise ValueError("push-pull fill needs at least one known pixel")
    coarse, chole = _downsample(img, hole, strict=False)
    coarse = _push_pull_fill(coarse, chole)
    up = _upsample(coarse, hole.shape)
    out = img.copy()
    out[hole] = up[hole]
    return out


_CHUNK = 4096


def _pack(img: np.ndarray) -> np.ndarray:
    """HxWxC (C <= 4) float image -> flat array of one 16-byte element per pixel.

    Gathering whole pixels as single 16-byte items (``np.take`` on a complex128 view) is several
    times faster than fancy-indexing rows of an (H*W, 3) array; the fourth channel is zero.
    """
    h, w, c = img.shape
    if c > 4:
        raise ValueError(f"at most 4 channels are supported, got {c}")
    buf = np.zeros((h * w, 4), dtype=np.float32)
    buf[:, :c] = img.reshape(h * w, c)
    return buf.view(np.complex128).ravel()


# ----------------------------------------------------------------------------------------------
# PatchMatch nearest-neighbour field search (Barnes et al. 2009, Sec. 3)
# ----------------------------------------------------------------------------------------------


class PatchMatcher:
    """Approximate nearest-neighbour field from target patches to source patches (SSD).

    Positions are patch *top-left* corners. ``source_valid`` (``(Hs - p + 1, Ws - p + 1)`` bool)
    says which source patches may be matched; ``(ty, tx)`` lists the target patches to match.
    ``exclude`` > 0 forbids a target from matching a source patch closer than ``exclude``
    pixels in both axes (used when source and target live in the same image and a target
    could otherwise match itself).

    The NNF is kept as ``sy, sx`` (one entry per target) with its distances ``d``.
    """

    def __init__(
        self,
        source: np.ndarray,
        source_valid: np.ndarray,
        ty: np.ndarray,
        tx: np.ndarray,
        target_shape: tuple[int, int],
        patch_size: int,
        rng: np.random.Generator,
        *,
        alpha: float = 0.5,
        jump_steps: tuple[int, ...] = (1,),
        exclude: int = 0,
    ):
        self.p = int(patch_size)
        self.rng = rng
        self.alpha = float(alpha)
        self.exclude = int(exclude)
        self.Hs, self.Ws = source.shape[:2]
        self.valid = np.ascontiguousarray(source_valid, dtype=bool)
        self.Hp, self.Wp = self.valid.shape
        self.vy, self.vx = np.nonzero(self.valid)
        if self.vy.size == 0:
            raise ValueError("PatchMatch needs at least one valid source patch")
        self.ty = np.asarray(ty, dtype=np.intp)
        self.tx = np.asarray(tx, dtype=np.intp)
        self.N = self.ty.size
        self.set_source(source)
        a, b = np.mgrid[0 : self.p, 0 : self.p]
        self._a, self._b = a.ravel(), b.ravel()
        self.src_offs = (self._a * self.Ws + self._b).astype(np.intp)

        # neighbour lookups for propagation: target index of the patch at t + (dy, dx), or -1
        Ht, Wt = target_shape
        index = np.full((Ht - self.p + 1, Wt - self.p + 1), -1, dtype=np.intp)
        index[self.ty, self.tx] = np.arange(self.N)
        self._prop: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        for step in jump_steps:
            for dy, dx in ((0, -step), (-step, 0), (0, step), (step, 0)):
                ny, nx = self.ty + dy, self.tx + dx
                ok = (ny >= 0) & (ny < index.shape[0]) & (nx >= 0) & (nx < index.shape[1])
                j = np.full(self.N, -1, dtype=np.intp)
                j[ok] = index[ny[ok], nx[ok]]
                sel = np.nonzero(j >= 0)[0]
                if sel.size:
                    self._prop.append((dy, dx, sel, j[sel]))

        self.sy = np.zeros(self.N, dtype=np.intp)
        self.sx = np.zeros(self.N, dtype=np.intp)
        self.d = np.full(self.N, np.inf)
        self.M: np.ndarray | None = None

    # -- data ----------------------------------------------------------------------------------

    def set_source(self, source: np.ndarray) -> None:
        """Point the search at (new values of) the source image."""
        self.src = _pack(source)

    def set_target(self, target: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Gather the target patch vectors (once per EM step; they are fixed during a search).

        ``mask`` (HxW bool) restricts the distance to the target pixels where it is True, as in
        the onion-peel initialisation where only already-filled pixels are trusted.
        """
        Wt = target.shape[1]
        offs = (self._a * Wt + self._b).astype(np.intp)
        idx = (self.ty * Wt + self.tx)[:, None] + offs[None, :]
        self.T = np.take(_pack(target), idx).view(np.float32).reshape(self.N, -1)
        self.M = None
        if mask is not None:
            m = np.take(mask.ravel(), idx).astype(np.float32)
            self.M = np.repeat(m, 4, axis=1)
            self.T *= self.M

    def distances(self, sel: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
        """SSD between target patches ``sel`` and source patches at ``(cy, cx)`` (Barnes Eq. 1's D)."""
        out = np.empty(sel.size)
        # ``sel`` is always sorted and unique, so a full-length one is arange(N): no gather
        full = sel.size == self.N
        for i in range(0, sel.size, _CHUNK):  # chunks keep the temporaries in cache
            j = slice(i, i + _CHUNK)
            idx = (cy[j] * self.Ws + cx[j])[:, None] + self.src_offs[None, :]
            diff = np.take(self.src, idx).view(np.float32).reshape(idx.shape[0], -1)
            if self.M is not None:
                diff *= self.M[j] if full else np.take(self.M, sel[j], axis=0)
            diff -= self.T[j] if full else np.take(self.T, sel[j], axis=0)
            out[j] = np.einsum("ij,ij->i", diff, diff)
        return out

    def refresh(self) -> None:
        """Recompute the distances of the current NNF (after the target or source changed)."""
        sel = np.arange(self.N)
        self.d = self.distances(sel, self.sy, self.sx)

    # -- the three PatchMatch operations -------------------------------------------------------

    def _allowed(self, sel: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
        ok = (cy >= 0) & (cy < self.Hp) & (cx >= 0) & (cx < self.Wp)
        ok[ok] = self.valid[cy[ok], cx[ok]]
        ok &= (cy != self.sy[sel]) | (cx != self.sx[sel])
        if self.exclude:
            ok &= (np.abs(cy - self.ty[sel]) >= self.exclude) | (np.abs(cx - self.tx[sel]) >= self.exclude)
        return ok

    def _improve(self, sel: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> int:
        """Evaluate one candidate per listed target; keep it where it is closer."""
        ok = self._allowed(sel, cy, cx)
        if not ok.any():
            return 0
        sel, cy, cx = sel[ok], cy[ok], cx[ok]
        d = self.distances(sel, cy, cx)
        better = d < self.d[sel]
        s = sel[better]
        self.sy[s], self.sx[s], self.d[s] = cy[better], cx[better], d[better]
        return int(better.sum())

    def random_init(self, where: np.ndarray | None = None) -> None:
        """Barnes Sec. 3.1: independent uniform samples over the valid source patches."""
        sel = np.arange(self.N) if where is None else np.nonzero(where)[0]
        k = self.rng.integers(0, self.vy.size, size=sel.size)
        # in the fallback mode a pick may overlap its own target; the search replaces it
        self.sy[sel], self.sx[sel] = self.vy[k], self.vx[k]

    def set_nnf(self, sy: np.ndarray, sx: np.ndarray) -> None:
        """Start from a given NNF; entries that are not valid sources are re-drawn at random."""
        self.sy = np.asarray(sy, dtype=np.intp).copy()
        self.sx = np.asarray(sx, dtype=np.intp).copy()
        ok = (self.sy >= 0) & (self.sy < self.Hp) & (self.sx >= 0) & (self.sx < self.Wp)
        ok[ok] = self.valid[self.sy[ok], self.sx[ok]]
        if self.exclude:
            ok &= (np.abs(self.sy - self.ty) >= self.exclude) | (np.abs(self.sx - self.tx) >= self.exclude)
        if not ok.all():
            self.random_init(~ok)

    def propagate(self) -> int:
        """Barnes Sec. 3.2 propagation: try f(t + e) - e for neighbours e at every jump step.

        All patches move at once (Jacobi / jump flooding) instead of Barnes' sequential scan,
        which would be a Python loop over pixels.
        """
        n = 0
        for dy, dx, sel, j in self._prop:
            n += self._improve(sel, self.sy[j] - dy, self.sx[j] - dx)
        return n

    def random_search(self) -> int:
        """Barnes Sec. 3.2 random search: u_i = v + w alpha^i R_i, i = 0, 1, ... while w alpha^i >= 1.

        Each sample is uniform in the window of radius w alpha^i around the current match,
        clipped to the source (Barnes' w is the maximum image dimension).
        """
        n = 0
        sel = np.arange(self.N)
        r = float(max(self.Hp, self.Wp))
        while r >= 1.0:
            ri = int(r)
            cy = self._sample(self.sy, ri, self.Hp)
            cx = self._sample(self.sx, ri, self.Wp)
            n += self._improve(sel, cy, cx)
            r *= self.alpha
        return n

    def _sample(self, c: np.ndarray, r: int, n: int) -> np.ndarray:
        lo = np.maximum(c - r, 0)
        hi = np.minimum(c + r, n - 1)
        return lo + (self.rng.random(c.size) * (hi - lo + 1)).astype(np.intp)

    def search(self, iterations: int, tol: float = 0.0) -> int:
        """Run ``iterations`` rounds of propagation + random search (Barnes Sec. 3).

        With ``tol > 0``, stops early when a round improves at most ``tol * N`` matches.
        Returns the rounds run.
        """
        for it in range(iterations):
            n = self.propagate() + self.random_search()
            if tol > 0 and n <= tol * self.N:
                return it + 1
        return iterations


def nnf_search(
    target: np.ndarray,
    source: np.ndarray,
    *,
    patch_size: int = 7,
    iterations: int = 5,
    rng: np.random.Generator,
    alpha: float = 0.5,
    jump_steps: tuple[int, ...] = (1,),
) -> tuple[np.ndarray, np.ndarray]:
    """PatchMatch NNF from every patch of ``target`` to the patches of ``source`` (Barnes 2009, Alg. 1).

    Images are HxWxC float arrays. Returns ``nnf`` of shape ``(Ht - p + 1, Wt - p + 1, 2)``
    holding the top-left ``(y, x)`` of the matched source patch, and the SSD ``dist`` of each
    match, shape ``(Ht - p + 1, Wt - p + 1)``.
    """
    p = int(patch_size)
    target = np.atleast_3d(np.asarray(target, dtype=np.float32))
    source = np.atleast_3d(np.asarray(source, dtype=np.float32))
    Htp, Wtp = target.shape[0] - p + 1, target.shape[1] - p + 1
    Hsp, Wsp = source.shape[0] - p + 1, source.shape[1] - p + 1
    if min(Htp, Wtp, Hsp, Wsp) < 1:
        raise ValueError(f"images must be at least {p}x{p} for patch_size={p}")
    ty, tx = (a.ravel() for a in np.mgrid[0:Htp, 0:Wtp])
    pm = PatchMatcher(
        source, np.ones((Hsp, Wsp), bool), ty, tx, target.shape[:2], p, rng, alpha=alpha, jump_steps=jump_steps
    )
    pm.set_target(target)
    pm.random_init()
    pm.refresh()
    pm.search(iterations)
    nnf = np.stack([pm.sy, pm.sx], axis=-1).reshape(Htp, Wtp, 2)
    return nnf, pm.d.reshape(Htp, Wtp)


# ----------------------------------------------------------------------------------------------
# voting (Wexler et al. 2007, Eq. 3-5)
# ----------------------------------------------------------------------------------------------


def _vote(
    img: np.ndarray,
    hy: np.ndarray,
    hx: np.ndarray,
    pm: PatchMatcher,
    weighting: str,
    log_conf: np.ndarray | None = None,
) -> np.ndarray:
    """New colours of the hole pixels ``(hy, hx)``: weighted mean of the overlapping source patches.

    Wexler et al. 2007, Eq. 3: c = sum_j w_j c_j / sum_j w_j over the target patches j covering
    the pixel, c_j the colour the match of patch j puts there, w_j = alpha_j s_j with the
    similarity s_j = exp(-d_j / (2 sigma^2)), sigma^2 the 75th percentile of the patch distances
    (their Sec. 3.2; ``weighting="uniform"`` sets s_j = 1), and the confidence alpha_j given as
    ``log_conf`` (HxW, log alpha at every pixel; alpha_j is taken at patch j's centre).
    """
    p, c = pm.p, pm.p // 2
    H, W = img.shape[:2]
    Hp, Wp = H - p + 1, W - p + 1
    if weighting == "similarity" and pm.N:
        d = pm.d
        s2 = float(np.percentile(d, 75))
        # floored so that a pixel whose patches all match poorly still gets a colour
        logw = np.maximum(-d / (2.0 * s2), -30.0) if s2 > 0 else np.zeros_like(d)
    else:
        logw = np.zeros(pm.N)
    if log_conf is not None:
        # alpha = gamma^-dist underflows deep in big holes: weights are kept relative to the
        # voting pixel's own confidence, which differs from a covering patch's by at most
        # p * sqrt(2) * log(gamma)
        logw = logw + log_conf[pm.ty + c, pm.tx + c]
        ref = -log_conf[hy, hx]
    else:
        ref = np.zeros(hy.size)
    # dense maps padded with "no patch" so that every (hole pixel - offset) lands inside them
    Wpad = Wp + 2 * p
    wmap = np.full((Hp + 2 * p) * Wpad, -np.inf)
    smap = np.zeros((Hp + 2 * p) * Wpad, dtype=np.intp)
    tpos = (pm.ty + p) * Wpad + (pm.tx + p)
    wmap[tpos] = logw
    smap[tpos] = pm.sy * W + pm.sx
    flat = img.reshape(-1, img.shape[2])
    base = (hy + p) * Wpad + (hx + p)
    acc = np.zeros((hy.size, img.shape[2]))
    wsum = np.zeros(hy.size)
    for a in range(p):
        for b in range(p):
            t = base - (a * Wpad + b)
            wt = np.exp(wmap[t] + ref)
            acc += wt[:, None] * flat[smap[t] + (a * W + b)]
            wsum += wt
    return (acc / wsum[:, None]).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# the backend
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LevelSetup:
    p: int  # patch size used at this level
    valid: np.ndarray  # source patches allowed
    ty: np.ndarray  # target patches (overlap the hole)
    tx: np.ndarray
    exclude: int  # > 0 in the fallback mode where sources may contain hole pixels


@dataclass(frozen=True)
class PatchMatchOptions:
    """The options of :class:`PatchMatchBackend`."""

    patch_size: int = option(7, "patch side in pixels (odd, >= 3), the same at every level", ge=3)
    pm_iterations: int = option(5, "PatchMatch rounds (propagation + random search) per EM step", ge=1)
    em_iterations: int = option(4, "search/vote steps at the coarsest level; they fall linearly to "
                                   "em_iterations_finest at the finest", ge=1)
    em_iterations_finest: int = option(2, "search/vote steps at the finest level", ge=1)
    min_size: int = option(32, "stop the pyramid before a level's shorter side drops below this", ge=4)
    alpha: float = option(0.5, "random-search window shrink factor (Barnes' alpha)", gt=0, lt=1)
    jump_steps: tuple[int, ...] = option((4, 2, 1), "propagation distances tried per round, jump-flooding style "
                                                    "(1 alone: plain neighbour propagation)", ge=1)
    weighting: Literal["similarity", "uniform"] = option(
        "similarity", "voting weights: Wexler's exp(-d / 2 sigma^2) (similarity) or uniform")
    pm_tol: float = option(0.02, "stop a search when a round improves fewer than this share of matches", ge=0)
    em_tol: float = option(0.05, "stop a level's EM when the hole's mean change is below this (grey levels, "
                                 "0-255)", ge=0)
    min_known_fraction: float = option(0.5, "in the fallback for huge holes, share of known pixels a source "
                                            "patch needs", gt=0, le=1)
    confidence_gamma: float = option(1.3, "Wexler's confidence decay gamma^-dist into the hole (1: off)", ge=1)
    coarse_init: Literal["onion", "diffusion"] = option(
        "onion", "coarsest-level initial guess: onion-peel patch filling or push-pull diffusion")

    def __post_init__(self):
        if self.patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd (the patch has a centre pixel), got {self.patch_size}")


class PatchMatchBackend(NumpyBackend):
    """Multi-scale PatchMatch image completion (Barnes et al. 2009; Wexler et al. 2007).

    Every random choice comes from the ``rng`` handed to :meth:`inpaint_one`.
    """

    Options = PatchMatchOptions

    def __init__(self, options: PatchMatchOptions | None = None, **values):
        super().__init__(options, **values)
        for f in dataclasses.fields(self.options):  # the maths below reads them as self.<option>
            setattr(self, f.name, getattr(self.options, f.name))

    # -- per level -----------------------------------------------------------------------------

    def _setup(self, hole: np.ndarray) -> _LevelSetup | None:
        """Choose the patch size and the source / target patches of one level.

        Shrinks the patch (down to 3) when no fully known patch fits, and past that accepts
        source patches with ``min_known_fraction`` known pixels (never one overlapping its
        target). ``None`` when no patch fits at all.
        """
        H, W = hole.shape
        h8 = hole.astype(np.int64)
        p = min(self.patch_size, H - (1 - H % 2), W - (1 - W % 2))  # largest odd size that fits
        while p >= 3:
            count = _box_sum(h8, p)
            valid = count == 0
            if valid.any():
                ty, tx = np.nonzero(count > 0)
                return _LevelSetup(p, valid, ty, tx, 0)
            p -= 2
        p = min(self.patch_size, H - (1 - H % 2), W - (1 - W % 2))
        if p < 3:
            return None
        count = _box_sum(h8, p)
        valid = count <= (1.0 - self.min_known_fraction) * p * p
        ty, tx = np.nonzero(count > 0)
        if not valid.any():
            valid = count == count.min()
        return _LevelSetup(p, valid, ty, tx, p)

    def _log_confidence(self, hole: np.ndarray) -> np.ndarray | None:
        """log alpha per pixel, alpha = gamma^-dist (Wexler et al. 2007, Sec. 3.2).

        ``dist`` is a hole pixel's distance to the known region (0 there): patches near the
        boundary speak louder in the vote, so the boundary, not the initial guess, drives
        the fill.
        """
        if self.confidence_gamma <= 1.0:
            return None
        dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3).astype(np.float64)
        return -np.log(self.confidence_gamma) * dist

    def _onion_peel(self, img: np.ndarray, hole: np.ndarray, setup: _LevelSetup, rng: np.random.Generator) -> None:
        """Coarsest-level initial guess, filled from the boundary inwards one ring at a time.

        Each ring pixel takes its colour from the best match (PatchMatch over the known and
        already filled pixels only) of the patch centred on it: the onion-peel initialisation
        of Newson et al. 2014 (Sec. 4.1), which lets structures that reach the hole continue
        into it, where a diffusion fill would favour smooth background. In place.
        """
        p, c = setup.p, setup.p // 2
        Hp, Wp = hole.shape[0] - p + 1, hole.shape[1] - p + 1
        filled = ~hole
        ring_kernel = np.ones((3, 3), np.uint8)
        while not filled.all():
            grown = cv2.dilate(filled.astype(np.uint8), ring_kernel).astype(bool)
            ly, lx = np.nonzero(grown & ~filled)
            ty, tx = np.clip(ly - c, 0, Hp - 1), np.clip(lx - c, 0, Wp - 1)
            pm = PatchMatcher(
                img, setup.valid, ty, tx, hole.shape, p, rng,
                alpha=self.alpha, jump_steps=self.jump_steps, exclude=setup.exclude,
            )
            pm.set_target(img, mask=filled)
            pm.random_init()
            pm.refresh()
            pm.search(self.pm_iterations, self.pm_tol)
            img[ly, lx] = img[pm.sy + (ly - ty), pm.sx + (lx - tx)]
            filled[ly, lx] = True

    def _complete_level(
        self,
        img: np.ndarray,
        hole: np.ndarray,
        n_em: int,
        rng: np.random.Generator,
        init: tuple[np.ndarray, np.ndarray, int] | None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, int] | None]:
        """EM at one level (Wexler Sec. 3.2): alternate the NNF search and the vote."""
        setup = self._setup(hole)
        if setup is None:
            return img, None
        p = setup.p
        hy, hx = np.nonzero(hole)
        log_conf = self._log_confidence(hole)
        pm = PatchMatcher(
            img,
            setup.valid,
            setup.ty,
            setup.tx,
            hole.shape,
            p,
            rng,
            alpha=self.alpha,
            jump_steps=self.jump_steps,
            exclude=setup.exclude,
        )
        if init is None:
            if self.coarse_init == "onion":
                self._onion_peel(img, hole, setup, rng)
            pm.random_init()
        else:
            # init holds the coarse NNF as patch *centres* on the coarse grid
            cyc, cxc, _ = init
            c = p // 2
            ccy = np.clip((setup.ty + c) // 2, 0, cyc.shape[0] - 1)
            ccx = np.clip((setup.tx + c) // 2, 0, cyc.shape[1] - 1)
            sy = 2 * cyc[ccy, ccx] + (setup.ty + c) % 2 - c
            sx = 2 * cxc[ccy, ccx] + (setup.tx + c) % 2 - c
            pm.set_nnf(sy, sx)
        for _ in range(n_em):
            pm.set_source(img)
            pm.set_target(img)
            pm.refresh()
            pm.search(self.pm_iterations, self.pm_tol)
            new = _vote(img, hy, hx, pm, self.weighting, log_conf)
            change = float(np.abs(new - img[hy, hx]).mean())
            img[hy, hx] = new
            if change < self.em_tol:
                break
        # dense map of matched source centres, for the next finer level
        H, W = hole.shape
        cy = np.arange(H)[:, None].repeat(W, 1)  # identity where no target: never a valid start
        cx = np.arange(W)[None, :].repeat(H, 0)
        c = p // 2
        cy[setup.ty + c, setup.tx + c] = pm.sy + c
        cx[setup.ty + c, setup.tx + c] = pm.sx + c
        return img, (cy, cx, p)

    # -- the NumpyBackend entry point ------------------------------------------------------------

    def inpaint_one(self, image: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill ``hole`` (HxW bool, True = fill) in ``image`` (HxWx3 uint8); return HxWx3 uint8."""
        image = np.asarray(image)
        hole = np.asarray(hole, dtype=bool)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be HxWx3 uint8, got shape {image.shape} dtype {image.dtype}")
        if hole.shape != image.shape[:2]:
            raise ValueError(f"hole shape {hole.shape} does not match image shape {image.shape[:2]}")
        if hole.all():
            raise ValueError("patchmatch needs known pixels to copy from, but the whole image is hole")
        if not hole.any():
            return image.copy()

        # 1. masked area pyramid, finest first
        pyramid = [(image.astype(np.float32), hole.copy())]
        while True:
            img, h = pyramid[-1]
            if min((img.shape[0] + 1) // 2, (img.shape[1] + 1) // 2) < self.min_size:
                break
            ci, ch = _downsample(img, h)
            if ch.all():
                break
            pyramid.append((ci, ch))

        # 2. coarse to fine
        n_levels = len(pyramid)
        result: np.ndarray | None = None
        nnf = None
        for level in range(n_levels - 1, -1, -1):
            img, h = pyramid[level]
            img = img.copy()
            if result is None:
                img = _push_pull_fill(img, h)
            else:
                up = _upsample(result, h.shape)
                img[h] = up[h]
            # linear EM schedule: em_iterations at the coarsest level, em_iterations_finest at 0
            t = level / (n_levels - 1) if n_levels > 1 else 1.0
            n_em = int(round(self.em_iterations_finest + t * (self.em_iterations - self.em_iterations_finest)))
            result, nnf = self._complete_level(img, h, max(n_em, 1), rng, nnf)

        out = np.clip(np.rint(result), 0, 255).astype(np.uint8)
        out[~hole] = image[~hole]
        return out


INPAINTERS.register("patchmatch", PatchMatchBackend)
