"""The command line as a user meets it: help, one-line errors, and the RIP commands."""

from __future__ import annotations

import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from inpaintlab.cli import main
from inpaintlab.cliargs import parse_ints


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["inpaintlab", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args", [[], ["rip"], ["rip", "run"], ["rip", "report"], ["rip", "export"],
                                  ["weights"], ["weights", "list"], ["weights", "fetch"], ["inpaint"], ["models"], ["metrics"],
                                  ["eval"], ["eval", "compare"], ["datasets"], ["datasets", "build-misato"],
                                  ["masks"], ["masks", "generate"], ["masks", "preview"],
                                  ["latent"], ["latent", "visualize"], ["strdiffusion"], ["strdiffusion", "import"],
                                  ["strdiffusion", "import-ir-sde"]])
def test_every_command_has_help(monkeypatch, capsys, args):
    code, out, _ = run_cli(monkeypatch, capsys, *args, "--help")
    assert code == 0 and "Usage" in out


def test_help_needs_no_torch():
    """`inpaintlab --help` must not wait for torch, pandas or scikit-image (seconds of imports)."""
    import subprocess

    code = ("import sys; import inpaintlab.cli; "
            "print(sorted(m for m in ('torch', 'pandas', 'skimage', 'diffusers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_listing_the_inpainters_needs_no_lightning():
    """Inpaint, eval and rip find every backend, trained methods' included, without Lightning's seconds of imports."""
    import subprocess

    code = ("import sys; from inpaintlab.inpainters import INPAINTERS; names = INPAINTERS.names(); "
            "print('latent-lama' in names and 'strdiffusion' in names, 'lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_parse_ints_ranges_and_errors():
    assert parse_ints("64,128,256", "x") == [64, 128, 256]
    assert parse_ints("0-3,7", "x") == [0, 1, 2, 3, 7]
    from inpaintlab.errors import InpaintlabError

    with pytest.raises(InpaintlabError, match="cannot read '3-1'"):
        parse_ints("3-1", "--seeds")


@pytest.fixture
def image_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "img.png")
    good = np.zeros((40, 48), np.uint8)
    good[10:20, 12:30] = 255
    Image.fromarray(good).save(tmp_path / "good.png")
    grey = good.copy()
    grey[0, 0] = 128
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(tmp_path / "empty.png")
    Image.fromarray(np.full((40, 48), 255, np.uint8)).save(tmp_path / "full.png")
    Image.fromarray(good[:30]).save(tmp_path / "small.png")
    return tmp_path, img, good


@pytest.mark.parametrize("model", ["telea", "navier-stokes", "patchmatch"])
def test_inpaint_writes_result_with_kept_pixels_exact(monkeypatch, capsys, image_and_masks, model):
    d, img, good = image_and_masks
    code, out, err = run_cli(monkeypatch, capsys, "inpaint", str(d / "img.png"), str(d / "good.png"),
                             "-o", str(d / "out.png"), "--model", model)
    assert code == 0, err
    res = np.asarray(Image.open(d / "out.png"))
    assert np.array_equal(res[good == 0], img[good == 0])
    assert not np.array_equal(res[good > 0], img[good > 0])


@pytest.mark.parametrize("mask,fragment", [("grey.png", "binar"), ("empty.png", "empty"),
                                           ("full.png", "whole image"), ("small.png", "size"),
                                           ("missing.png", "missing.png")])
def test_bad_masks_are_one_line_errors(monkeypatch, capsys, image_and_masks, mask, fragment):
    d, _, _ = image_and_masks
    code, out, err = run_cli(monkeypatch, capsys, "inpaint", str(d / "img.png"), str(d / mask), "-o", str(d / "o.png"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], err
    assert not (d / "o.png").exists()


def test_bad_image_is_one_line_error(monkeypatch, capsys, image_and_masks):
    d, _, _ = image_and_masks
    (d / "bad.png").write_bytes(b"garbage")
    code, _, err = run_cli(monkeypatch, capsys, "inpaint", str(d / "bad.png"), str(d / "good.png"), "-o", str(d / "o.png"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bad.png" in err


def test_rip_run_report_export(monkeypatch, capsys, image_dir, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "rip", "run", "--images", str(image_dir), "--out", str(out_dir),
                             "--mask-sizes", "16,32", "--percent", "100", "--seeds", "0-1", "--metrics", "psnr,ssim",
                             "--size", "64")
    assert code == 0, err
    figures = out_dir / "figures"
    for name in ("mean_std.png", "per_image_scatter.png", "seed_spread.png", "strip_a.png", "summary.csv"):
        assert (figures / name).stat().st_size > 0
    code, out, err = run_cli(monkeypatch, capsys, "rip", "export", str(out_dir), "--format", "parquet")
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "rip", "export", str(out_dir), "--format", "csv")
    assert code == 0, err
    con = sqlite3.connect(out_dir / "results.sqlite")
    ref = pd.read_sql_query("SELECT * FROM metrics ORDER BY image, mask_size, seed, iteration, metric", con)
    con.close()
    pd.testing.assert_frame_equal(pd.read_parquet(out_dir / "metrics.parquet"), ref)
    csv = pd.read_csv(out_dir / "metrics.csv")
    assert len(csv) == len(ref) and list(csv.columns) == list(ref.columns)
    # Same folder, different settings: refused, naming the keys.
    code, _, err = run_cli(monkeypatch, capsys, "rip", "run", "--images", str(image_dir), "--out", str(out_dir),
                           "--mask-sizes", "16,32", "--percent", "200", "--seeds", "0-1", "--metrics", "psnr,ssim",
                           "--size", "64")
    assert code == 2 and "config.percent" in err and len(err.strip().splitlines()) == 1


def test_rip_report_on_a_folder_that_is_no_run(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "rip", "report", str(tmp_path))
    assert code == 2 and "not a RIP run folder" in err


def test_weights_list_names_every_file(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run_cli(monkeypatch, capsys, "weights", "list")
    assert code == 0
    for name in ("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth", "squeezenet1_1-b8a52dc0.pth",
                 "alex.pth", "vgg.pth", "squeeze.pth", "pt_inception-2015-12-05-6726825d.pth"):
        assert name in out
