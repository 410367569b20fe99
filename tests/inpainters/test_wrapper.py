import pytest
import torch

from inpaintlab.errors import BadMaskError, InpaintlabError
from inpaintlab.inpainters import Backend, Inpainter, Requirements, load_inpainter
from inpaintlab.inpainters.compositing import composite_feather, composite_poisson

from ..conftest import SHALLOW_RTOL, assert_close


def batch(n=2, h=48, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 3, h, w, generator=g) * 255).round() / 255
    hole = torch.zeros(n, 1, h, w)
    hole[0, :, 10:22, 8:20] = 1
    hole[1 % n, :, 30:44, 20:36] = 1
    return x, hole


class Scribbler(Backend):
    """A deliberately unfaithful backend: changes every pixel, and needs sizes that are multiples of 16."""

    requirements = Requirements(size_multiple=16, value_range=(-1.0, 1.0))

    def inpaint(self, images, hole, *, generator):
        assert images.shape[-1] % 16 == 0 and images.shape[-2] % 16 == 0
        assert images.min() >= -1 and images.min() < 0  # rescaled to [-1, 1]
        return images * 0.5


def test_wrapper_adapts_composites_and_measures_drift():
    x, hole = batch(h=50, w=37)
    out = Inpainter(Scribbler(), name="scribbler").run(x, hole)
    keep = hole.expand_as(x) == 0
    assert torch.equal(out.images[keep], x[keep])
    # The backend halved [-1, 1] values: in [0, 1] that is y = (x + 0.5) / 2 ... drift = mean |y - x|.
    # The references in float64; the wrapper's float32 rescaling rounds a few times (SHALLOW_RTOL).
    x64, hole64 = x.double(), hole.double()
    expected = ((x64 * 2 - 1) * 0.5 + 1) / 2
    assert_close(out.raw, expected.clamp(0, 1), SHALLOW_RTOL, "rescaled output")
    drift = ((expected - x64).abs() * (1 - hole64)).sum(dim=(1, 2, 3)) / ((1 - hole64).sum(dim=(1, 2, 3)) * 3)
    assert_close(out.kept_drift, drift, SHALLOW_RTOL, "kept drift")


def test_opencv_backends_report_zero_drift():
    # the input is on the 8-bit grid and cv2.inpaint copies the kept uint8 pixels: exactly zero
    x, hole = batch()
    for name in ("telea", "navier-stokes"):
        out = load_inpainter(name).run(x, hole)
        assert torch.equal(out.kept_drift, torch.zeros(2))


@pytest.mark.parametrize("bad,match", [
    (lambda h: h[:, :, :10], "shape"),
    (lambda h: h * 0.5, "binary"),
    (lambda h: torch.zeros_like(h), "empty"),
    (lambda h: torch.ones_like(h), "whole image"),
])
def test_bad_masks_give_clear_errors(bad, match):
    x, hole = batch()
    with pytest.raises(BadMaskError, match=match) as e:
        load_inpainter("telea")(x, bad(hole))
    assert "\n" not in str(e.value)


def test_unknown_backend_and_option_are_named():
    with pytest.raises(InpaintlabError, match="choose one of"):
        load_inpainter("nope")
    with pytest.raises(InpaintlabError, match="no option strength"):
        load_inpainter("telea", strength=1)


def test_feather_ramps_inside_the_hole_only():
    x = torch.zeros(1, 3, 32, 32)
    y = torch.ones(1, 3, 32, 32)
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    out = composite_feather(x, y, hole, width=4)
    assert torch.equal(out[..., :8, :], x[..., :8, :])  # kept: exact
    assert out[0, 0, 16, 16] == 1.0  # deep inside: the result
    assert 0 < out[0, 0, 8, 16] < 1  # the hole's edge: blended


def test_poisson_keeps_outside_and_matches_gradients_inside():
    # Pasting a constant-offset copy: Poisson blending removes the offset (same gradients, boundary
    # taken from the destination), so the result inside the hole is close to the destination.
    yy, xx = torch.meshgrid(torch.linspace(0.2, 0.6, 40), torch.linspace(0.1, 0.5, 40), indexing="ij")
    x = torch.stack([yy, xx, (yy + xx) / 2])[None]
    y = (x + 0.3).clamp(0, 1)
    hole = torch.zeros(1, 1, 40, 40)
    hole[..., 10:30, 12:28] = 1
    out = composite_poisson(x, y, hole)
    keep = hole.expand_as(x) == 0
    assert torch.equal(out[keep], x[keep])
    inside = hole.expand_as(x) > 0
    assert (out[inside] - x[inside]).abs().mean() < 0.02 < (y[inside] - x[inside]).abs().mean()
