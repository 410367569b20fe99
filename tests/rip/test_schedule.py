import numpy as np
import pytest

from inpaintlab.errors import InpaintlabError
from inpaintlab.rip.schedule import (Grid, checkpoint_iterations, draw_cells, iteration_generator,
                                     iterations_for, percent_per_iteration)


@pytest.mark.parametrize("cell,expected", [(64, 256), (128, 64), (256, 16)])
def test_400_percent_at_512_matches_the_paper(cell, expected):
    # RIP paper, Section 4: 400 % of a 512x512 image is 256 / 64 / 16 inpaintings.
    assert iterations_for(400, 512, cell) == expected
    assert iterations_for(100, 512, cell) * cell * cell == 512 * 512


def test_checkpoints_every_50_percent_include_zero_and_end():
    its = checkpoint_iterations(400, 50, 512, 64)
    assert its == [0, 32, 64, 96, 128, 160, 192, 224, 256]
    assert [i * percent_per_iteration(512, 64) for i in its] == [0, 50, 100, 150, 200, 250, 300, 350, 400]
    assert checkpoint_iterations(400, 50, 512, 256) == [0, 2, 4, 6, 8, 10, 12, 14, 16]


def test_checkpoint_between_iterations_rounds_up_and_end_is_kept():
    # 256-cells add 25 % per iteration: a 10 % checkpoint lands on the first iteration past it.
    assert checkpoint_iterations(60, 10, 512, 256) == [0, 1, 2, 3]


def test_grid_rejects_sizes_that_do_not_divide():
    with pytest.raises(InpaintlabError, match="does not divide"):
        Grid(512, 96)


def test_grid_hole_is_the_cell():
    g = Grid(8, 4)
    m = g.hole(3)[0, 0].numpy()
    assert m.sum() == 16 and m[4:, 4:].all()


def test_draws_are_uniform_and_independent_of_other_trajectories():
    g = Grid(512, 64)
    a = draw_cells("img", 64, 0, g, 20000)
    # Uniform over 64 cells: chi-square with 63 dof stays far below 120 for a correct sampler.
    counts = np.bincount(a, minlength=64)
    chi2 = ((counts - 20000 / 64) ** 2 / (20000 / 64)).sum()
    assert chi2 < 120
    assert np.array_equal(a[:50], draw_cells("img", 64, 0, g, 50))
    assert not np.array_equal(a[:50], draw_cells("img", 64, 1, g, 50))
    assert not np.array_equal(a[:50], draw_cells("other", 64, 0, g, 50))


def test_no_replacement_visits_each_cell_once_per_sweep():
    g = Grid(512, 128)
    d = draw_cells("img", 128, 0, g, 40, "no-replacement")
    assert sorted(d[:16]) == list(range(16)) and sorted(d[16:32]) == list(range(16))


def test_iteration_generators_are_reproducible_and_distinct():
    a = iteration_generator("img", 64, 0, 5)
    b = iteration_generator("img", 64, 0, 5)
    c = iteration_generator("img", 64, 0, 6)
    import torch

    x, y, z = (torch.rand(4, generator=g) for g in (a, b, c))
    assert torch.equal(x, y) and not torch.equal(x, z)
