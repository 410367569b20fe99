"""``inpaintlab masks generate`` / ``preview`` end to end in a temporary folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from inpaintlab.errors import InpaintlabError
from inpaintlab.images import load_mask
from inpaintlab.masks import MASKS
from inpaintlab.masks.commands import app as masks_app

app = typer.Typer()
app.add_typer(masks_app, name="masks")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["masks", *map(str, args)])


def test_generate_writes_masks_and_manifest_and_is_reproducible(tmp_path):
    r = run("generate", "--kind", "comod", "--count", 5, "--size", 96, "--seed", 3, "--out", tmp_path / "a",
            "--param", "lo=0.3", "--param", "hi=0.8")
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert (manifest["kind"], manifest["seed"], manifest["size"]) == ("comod", 3, 96)
    # resolved: the given values typed, the defaults filled in
    assert manifest["params"] == {"lo": 0.3, "hi": 0.8, "max_tries": 1000, "min_width": 12, "max_width": 48}
    assert len(manifest["masks"]) == 5
    for rec in manifest["masks"]:
        hole = load_mask(tmp_path / "a" / rec["file"])[0, 0].numpy()
        assert hole.shape == (96, 96)
        assert rec["hole_ratio"] == pytest.approx(hole.mean(), abs=1e-12)
        assert 0.3 < rec["hole_ratio"] < 0.8
        assert set(np.unique(np.asarray(Image.open(tmp_path / "a" / rec["file"])))) <= {0, 255}  # white = hole
    # same seed -> identical files; a smaller count gives the same first masks (mask i depends on (seed, i))
    r = run("generate", "--kind", "comod", "--count", 3, "--size", 96, "--seed", 3, "--out", tmp_path / "b",
            "--param", "lo=0.3", "--param", "hi=0.8")
    assert r.exit_code == 0, r.output
    for rec in manifest["masks"][:3]:
        assert (tmp_path / "a" / rec["file"]).read_bytes() == (tmp_path / "b" / rec["file"]).read_bytes()
    r = run("generate", "--kind", "comod", "--count", 3, "--size", 96, "--seed", 4, "--out", tmp_path / "c",
            "--param", "lo=0.3", "--param", "hi=0.8")
    assert (tmp_path / "a" / "mask_00000.png").read_bytes() != (tmp_path / "c" / "mask_00000.png").read_bytes()


def test_preview_writes_contact_sheet_and_histogram(tmp_path):
    assert run("generate", "--kind", "lama-medium", "--count", 10, "--size", 128, "--out", tmp_path,
               "--param", "size=256").exit_code == 0
    r = run("preview", tmp_path)
    assert r.exit_code == 0, r.output
    for name in ("preview/contact_sheet.png", "preview/hole_ratios.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size[0] > 200 and im.size[1] > 100
    sheet = np.asarray(Image.open(tmp_path / "preview" / "contact_sheet.png").convert("L"))
    assert sheet.std() > 20  # not blank: black masks with white holes


def test_help_lists_every_kind_and_its_params():
    r = run("generate", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for name in MASKS.names():
        assert name in text
    assert "object_folder" in text and "max_hole_ratio" in text


@pytest.mark.parametrize("args,match", [
    (["--kind", "nope"], "unknown mask generator 'nope'"),
    (["--kind", "comod", "--param", "nope=1"], "has no parameter nope"),
    (["--kind", "comod", "--param", "lo"], "is not KEY=VALUE"),
    (["--kind", "comod", "--param", "lo=0.9", "--param", "hi=0.1"], "range"),
    (["--kind", "lama-thin", "--param", "size=300"], "size 256 and 512"),
    (["--kind", "object"], "needs --param folder"),
])
def test_bad_kind_or_param_is_a_one_line_error(tmp_path, args, match):
    r = run("generate", "--count", 2, "--size", 64, "--out", tmp_path, *args)
    assert r.exit_code != 0
    assert isinstance(r.exception, InpaintlabError)
    assert match in str(r.exception) and "\n" not in str(r.exception)


def test_preview_of_a_folder_without_manifest_is_an_error(tmp_path):
    r = run("preview", tmp_path)
    assert isinstance(r.exception, InpaintlabError) and "manifest.json" in str(r.exception)


def test_generate_names_masks_after_an_image_set(tmp_path):
    from inpaintlab.masks.sets import generate_set

    m = generate_set("rectangle", 99, 32, 7, tmp_path / "m", {}, names=["a", "b", "c"])
    assert [r["file"] for r in m["masks"]] == ["a.png", "b.png", "c.png"] and m["count"] == 3
    plain = generate_set("rectangle", 3, 32, 7, tmp_path / "p", {})
    # Mask i still depends only on (seed, i): the same pixels under either naming.
    for named, numbered in zip(m["masks"], plain["masks"]):
        assert (tmp_path / "m" / named["file"]).read_bytes() == (tmp_path / "p" / numbered["file"]).read_bytes()
