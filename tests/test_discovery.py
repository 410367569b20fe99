"""A new extension is one module with one ``register`` call: discovered, listed, and tested with nothing else edited."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import inpaintlab.inpainters as inpainters_package
from inpaintlab.cli import app
from inpaintlab.inpainters import INPAINTERS, load_inpainter

#: a complete backend module: the mean colour of the kept pixels, plus noise from the generator
THROWAWAY = '''
"""A throwaway backend: fill the hole with the kept pixels' mean colour and a little seeded noise."""
from dataclasses import dataclass

import numpy as np

from inpaintlab.inpainters import INPAINTERS, NumpyBackend
from inpaintlab.options import option


@dataclass(frozen=True)
class MeanOptions:
    """The options of the throwaway backend."""

    noise: float = option(2.0, "standard deviation of the added noise, in grey levels", ge=0)


@INPAINTERS.register("{name}")
class MeanFill(NumpyBackend):
    """Mean colour of the kept pixels plus seeded noise (a test's throwaway backend)."""

    Options = MeanOptions

    def inpaint_one(self, image, hole, rng):
        out = image.astype(np.float64)
        out[hole] = image[~hole].mean(axis=0) + rng.normal(0, self.options.noise, (int(hole.sum()), 3))
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
'''


def test_a_module_dropped_into_the_inpainters_package_is_listed_and_usable(tmp_path, monkeypatch):
    (tmp_path / "throwaway_mean.py").write_text(THROWAWAY.replace("{name}", "throwaway-mean"))
    monkeypatch.setattr(inpainters_package, "__path__", [*inpainters_package.__path__, str(tmp_path)])
    try:
        INPAINTERS.discover(again=True)
        result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "throwaway-mean" in result.output and "noise=2.0" in result.output
        result = CliRunner().invoke(app, ["models", "throwaway-mean"], env={"COLUMNS": "200"})
        assert "standard deviation of the added noise" in result.output
        import torch

        x = torch.rand(1, 3, 16, 16)
        hole = torch.zeros(1, 1, 16, 16)
        hole[..., 4:8, 4:8] = 1
        out = load_inpainter("throwaway-mean", noise="0").run(x, hole)
        keep = (1 - hole).bool().expand_as(x)
        assert torch.equal(out.images[keep], x[keep])
        expected = (x[keep].reshape(3, -1).mean(1) * 255).round() / 255  # uint8 in, uint8 out
        assert torch.allclose(out.images[0, :, 5, 5], expected, atol=1.5 / 255)
    finally:
        INPAINTERS.unregister("throwaway-mean")
        sys.modules.pop("inpaintlab.inpainters.throwaway_mean", None)


def test_an_installed_plugin_is_listed_and_runs_the_registry_tests(tmp_path):
    """A package that declares an ``inpaintlab.plugins`` entry point: the CLI lists its backend and the
    registry-parametrised tests (tests/test_registries.py) test it, with no file of ours edited."""
    (tmp_path / "throwaway_plugin.py").write_text(THROWAWAY.replace("{name}", "throwaway-plugin"))
    info = tmp_path / "throwaway_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: throwaway-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[inpaintlab.plugins]\nthrowaway = throwaway_plugin\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200"}
    listed = subprocess.run([sys.executable, "-m", "inpaintlab.cli", "models"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "throwaway-plugin" in listed.stdout
    root = Path(__file__).resolve().parents[1]
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "throwaway",
                             str(root / "tests" / "test_registries.py")], env=env, capture_output=True, text=True,
                            timeout=300, cwd=root)
    assert tested.returncode == 0, tested.stdout[-2000:]
    passed = int(tested.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= 4, tested.stdout[-500:]  # fills and keeps (x each compositing mode), seeded, options


def test_a_registration_of_the_wrong_kind_fails_where_it_is_made():
    from inpaintlab.metrics import METRICS

    class NotABackend:
        """Nothing to do with inpainting."""

    with pytest.raises(TypeError, match="subclass of Backend"):
        INPAINTERS.register("not-a-backend", NotABackend)
    from inpaintlab.inpainters import NumpyBackend

    class Undocumented(NumpyBackend):
        def inpaint_one(self, image, hole, rng):
            return image

    Undocumented.__doc__ = None  # a class without a docstring inherits none
    with pytest.raises(TypeError, match="docstring"):
        INPAINTERS.register("undocumented", Undocumented)
    with pytest.raises(TypeError, match="subclass of Metric"):
        METRICS.register("not-a-metric", NotABackend)
    assert "not-a-backend" not in INPAINTERS and "undocumented" not in INPAINTERS
