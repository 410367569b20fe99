"""StrDiffusion's structure inputs: scikit-image's grayscale and Canny, and no hole content in the edge map."""

from __future__ import annotations

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.feature import canny

from inpaintlab.datasets import open_image_set
from inpaintlab.methods.strdiffusion.structure import grayscale, structure_edges

from ..conftest import SHALLOW_RTOL, assert_close


def astronaut(size=128):
    return open_image_set("builtin", size=size).load(0)


def test_grayscale_is_skimages_rgb2gray():
    image = astronaut()
    want = rgb2gray(image[0].permute(1, 2, 0).double().numpy())
    assert_close(grayscale(image.double())[0, 0], want, SHALLOW_RTOL, "gray")


def test_known_pixel_edges_carry_nothing_from_the_hole():
    image = astronaut()
    hole = torch.zeros(1, 1, 128, 128)
    hole[..., 40:90, 30:100] = 1
    edges = structure_edges(image, hole, sigma=2.0)
    scrambled = torch.where(hole > 0.5, torch.rand(image.shape, generator=torch.Generator().manual_seed(0)), image)
    assert torch.equal(structure_edges(scrambled, hole, sigma=2.0), edges)  # hole content changes nothing
    assert not edges[hole > 0.5].any() and set(edges.unique().tolist()) <= {0.0, 1.0}
    # the reference's complete-image Canny does leak: it changes when the hole does
    complete = structure_edges(image, hole, sigma=2.0, edges="complete")
    assert not torch.equal(structure_edges(scrambled, hole, sigma=2.0, edges="complete"), complete)
    assert not complete[hole > 0.5].any()  # multiplied by keep, as the reference does


def test_without_a_hole_both_modes_are_skimages_canny_of_the_whole_image():
    image = astronaut(64)
    gray = rgb2gray(image[0].permute(1, 2, 0).double().numpy())
    none = torch.zeros(1, 1, 64, 64)
    want = canny(gray, sigma=3.0).astype(np.float32)
    assert np.array_equal(structure_edges(image, none, sigma=3.0, edges="complete")[0, 0].numpy(), want)
    # a mask of all-true equals no mask, up to the mask's border erosion
    known = structure_edges(image, none, sigma=3.0)[0, 0].numpy()
    assert np.array_equal(known[2:-2, 2:-2], want[2:-2, 2:-2])
