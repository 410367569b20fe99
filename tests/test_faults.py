"""Faults and silent wrongs: nothing lost, nothing mixed, nothing changed that should not change."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from inpaintlab import runs
from inpaintlab.errors import ConfigMismatchError, InpaintlabError
from inpaintlab.evaluate import EvalConfig, EvalRun
from inpaintlab.rip import run_rip
from inpaintlab.store import DiskFullError

from .conftest import synthetic_photo
from .rip.test_engine import assert_same_run, small_config, tables
from .test_bad_input import run_main


def quiet(_: str) -> None:
    pass


# -- resumes: refuse what changes a result, accept what does not ------------------------------------

def test_resume_accepts_equivalent_spellings(image_dir, tmp_path):
    """A trailing slash, another order of --mask-sizes / --seeds / --metrics, or a default typed out is one run."""
    out = tmp_path / "run"
    run_rip(small_config(image_dir, mask_sizes=[16, 32], seeds=[0, 1], metrics=["psnr", "ssim"]), out, log=quiet)
    before = tables(out)
    same = small_config(Path(str(image_dir) + "/"), mask_sizes=[32, 16], seeds=[1, 0], metrics=["ssim", "psnr"],
                        model_options={"radius": "3"})
    summary = run_rip(same, out, log=quiet)
    assert summary.calls == 0 and summary.resumed == summary.trajectories  # nothing was run again
    after = tables(out)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_exact=True)


def test_resume_refuses_a_changed_backend_default(image_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    run_rip(small_config(image_dir), out, log=quiet)
    from inpaintlab.inpainters.opencv import OpenCVBackend, RadiusOptions

    changed = dataclasses.make_dataclass("RadiusOptions", [("radius", float, dataclasses.field(
        default=4.0, metadata={"help": "neighbourhood radius", "gt": 0}))], frozen=True)
    monkeypatch.setattr(OpenCVBackend, "Options", changed)
    with pytest.raises(ConfigMismatchError, match=r"differs in: config\.model_options\.radius \(3\.0 -> 4\.0\)"):
        run_rip(small_config(image_dir), out, log=quiet)
    assert RadiusOptions().radius == 3.0


def test_resume_refuses_changed_package_versions_naming_them(image_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    run_rip(small_config(image_dir), out, log=quiet)
    real = runs.versions()
    monkeypatch.setattr("inpaintlab.rip.engine.versions", lambda: {**real, "torch": "9.9.9"})
    import re

    torch_was = re.escape(f'"{real["torch"]}"')
    with pytest.raises(ConfigMismatchError, match=rf"set of package versions \(differs in: versions\.torch "
                                                  rf"\({torch_was} -> \"9\.9\.9\"\)\); reinstall"):
        run_rip(small_config(image_dir), out, log=quiet)


def test_eval_resume_accepts_reordered_metrics_and_a_trailing_slash(tmp_path):
    root = tmp_path
    (root / "imgs").mkdir()
    (root / "masks").mkdir()
    for k in range(2):
        Image.fromarray(synthetic_photo(40, 40, k)).save(root / "imgs" / f"a{k}.png")
        m = np.zeros((40, 40), np.uint8)
        m[5:20, 5:25] = 255
        Image.fromarray(m).save(root / "masks" / f"a{k}.png")
    cfg = dict(images=str(root / "imgs"), masks=str(root / "masks"), model="telea")
    EvalRun(EvalConfig(**cfg, metrics=["psnr", "mae@hole"]), root / "out", log=quiet).run()
    again = EvalRun(EvalConfig(**{**cfg, "images": str(root / "imgs") + "/"}, metrics=["mae@hole", "psnr"],
                               model_options={"radius": "3.0"}), root / "out", log=quiet).run()
    assert again.resumed == 2


# -- runs that must not mix --------------------------------------------------------------------------------

SLOW_RIP = r'''
import sys, time
from inpaintlab.inpainters import INPAINTERS
from inpaintlab.inpainters.opencv import TeleaBackend

class SlowTelea(TeleaBackend):
    """Telea, slowed down so that two processes overlap."""

    def inpaint_one(self, image, hole, rng):
        # slow enough (about 7 s of work after config.json appears) that the second process, whose start-up
        # takes seconds when other jobs share the cores, meets the first one still running
        time.sleep(0.15)
        return super().inpaint_one(image, hole, rng)

INPAINTERS.register("slow-telea", SlowTelea)
from inpaintlab.cli import main
sys.argv = ["inpaintlab", "rip", "run", "--images", sys.argv[1], "--out", sys.argv[2], "--model", "slow-telea",
            "--mask-sizes", "16", "--percent", sys.argv[3], "--metrics", "psnr", "--size", "64", "--no-report"]
main()
'''


def test_two_processes_on_one_run_folder_never_mix(image_dir, tmp_path):
    """The second process is refused at once, naming the first one's PID; the first finishes alone."""
    script = tmp_path / "slow_rip.py"
    script.write_text(SLOW_RIP)
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, str(script), str(image_dir), str(out), "100"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([sys.executable, str(script), str(image_dir), str(out), "200"], capture_output=True,
                            text=True, timeout=120)
    assert first.wait(timeout=120) == 0, first.stderr
    assert second.returncode == 2
    assert f"in use by another inpaintlab process (PID {first.pid})" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    con = sqlite3.connect(out / "results.sqlite")
    percents = {r[0] for r in con.execute("SELECT DISTINCT percent FROM metrics")}
    con.close()
    assert max(percents) == 100.0  # only the first run's checkpoints


# -- nothing lost on failure ------------------------------------------------------------------------------------

def test_disk_full_is_one_line_and_the_same_command_resumes(image_dir, tmp_path, monkeypatch, capsys):
    from inpaintlab.rip import store

    run_rip(small_config(image_dir), tmp_path / "full", log=quiet)
    real = store.RipStore.commit
    calls = {"n": 0}

    def commit(self, checkpoints):
        calls["n"] += 1
        if calls["n"] == 3:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, checkpoints)

    monkeypatch.setattr(store.RipStore, "commit", commit)
    args = ["rip", "run", "--images", str(image_dir), "--out", str(tmp_path / "cut"), "--model", "telea",
            "--mask-sizes", "16,32", "--percent", "200", "--checkpoint-every", "50", "--seeds", "0,1",
            "--metrics", "psnr,ssim", "--size", "64", "--batch-size", "3", "--no-report"]
    code, _, err = run_main(monkeypatch, capsys, args)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "the disk is full" in line and "everything committed before is kept" in line and \
        "run the same command again to resume" in line
    monkeypatch.setattr(store.RipStore, "commit", real)
    code, _, err = run_main(monkeypatch, capsys, args)
    assert code == 0, err
    assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_disk_full_while_saving_an_image_is_recognised(tmp_path):
    from inpaintlab.store import disk_full_is_one_line

    def save():
        try:
            raise OSError(28, "No space left on device")
        except OSError as exc:
            raise InpaintlabError("cannot save image x.png: No space left on device") from exc

    with pytest.raises(DiskFullError, match="disk is full .*resume the RIP run"):
        with disk_full_is_one_line(tmp_path, "RIP run"):
            save()


def test_a_file_name_that_is_not_utf8_is_skipped_and_listed(image_dir, tmp_path, monkeypatch, capsys):
    bad = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    (image_dir / "a.png").rename(image_dir / bad)
    out = tmp_path / "run"
    summary = run_rip(small_config(image_dir, seeds=[0]), out, log=quiet)
    assert summary.trajectories == 2 * 2  # the two other images x two cell sizes
    assert [(p, why) for p, why in summary.failed_images] == [
        (str(image_dir / "caf\\xe9.png"), "its file name is not valid UTF-8; rename it")]
    # eval: the image, its mask and its result, all skipped and named
    masks = tmp_path / "masks"
    masks.mkdir()
    for stem in ("b", "c"):
        Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), 20)).save(masks / f"{stem}.png")
    code, outp, err = run_main(monkeypatch, capsys, ["eval", "--images", str(image_dir), "--masks", str(masks),
                                                     "--model", "telea", "--metrics", "psnr", "--size", "50",
                                                     "--out", str(tmp_path / "ev")])
    assert code == 0, err
    assert "caf\\xe9.png: its file name is not valid UTF-8" in err


def test_a_long_legal_output_name_is_written(tmp_path):
    """A 250-byte name is legal (the limit is 255); the temporary file beside it must not be longer."""
    import torch

    from inpaintlab.images import load_image, save_image

    name = "x" * 246 + ".png"
    assert len(name.encode()) == 250
    image = torch.rand(1, 3, 8, 8)
    save_image(tmp_path / name, image)
    assert load_image(tmp_path / name, size=None).shape == (1, 3, 8, 8)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


# -- silent wrongs ---------------------------------------------------------------------------------------------

def test_inpaint_keeps_alpha_and_every_kept_pixel_of_an_rgba_image(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 48, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(np.arange(48) < 24, 255, 60)  # half opaque, half translucent
    rgba[:5, :5, 3] = 0  # fully transparent pixels keep their colours too
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    hole = np.zeros((40, 48), np.uint8)
    hole[10:25, 12:36] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    code, _, err = run_main(monkeypatch, capsys, ["inpaint", str(tmp_path / "in.png"), str(tmp_path / "mask.png"),
                                                  "-o", str(tmp_path / "out.png")])
    assert code == 0, err
    out = np.asarray(Image.open(tmp_path / "out.png"))
    inside = hole > 0
    assert out.shape == rgba.shape
    assert np.array_equal(out[~inside], rgba[~inside])  # RGBA outside the hole, bit for bit
    assert np.array_equal(out[..., 3], rgba[..., 3])  # the alpha channel everywhere
    assert (out[inside, :3] != rgba[inside, :3]).any(axis=1).mean() > 0.5  # the hole was filled


def test_export_format_follows_the_suffix(tmp_path, image_dir):
    from inpaintlab.report.rip import export, load_run

    out = tmp_path / "run"
    run_rip(small_config(image_dir), out, log=quiet)
    _, metrics, _ = load_run(out)
    pq = export(out, dest=tmp_path / "x.parquet")
    assert pq.read_bytes()[:4] == b"PAR1"
    pd.testing.assert_frame_equal(pd.read_parquet(pq), metrics)
    csv = export(out, dest=tmp_path / "x.csv")
    assert pd.read_csv(csv).shape == metrics.shape
    assert export(out).name == "metrics.csv" and export(out, "parquet").name == "metrics.parquet"


def test_weights_list_does_not_count_an_empty_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "alex.pth").write_bytes(b"")
    (tmp_path / "w" / "vgg.pth").write_bytes(b"\0" * 100)
    code, out, _ = run_main(monkeypatch, capsys, ["weights", "list"])
    assert code == 0
    blocks = {b.split(":")[0]: b for b in out.split("\n") if b and not b.startswith(" ")}
    assert blocks["alex.pth"] == "alex.pth: MISSING" and blocks["vgg.pth"] == "vgg.pth: present (100 bytes)"
    assert f"empty file (0 bytes), ignored: {tmp_path / 'w' / 'alex.pth'}" in out


def test_weights_list_shows_every_name_in_full_at_80_columns(monkeypatch, capsys, tmp_path):
    from inpaintlab.weights import WEIGHT_FILES, weights_dir

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / ("a-rather-long-folder-name-" * 3)))
    code, out, _ = run_main(monkeypatch, capsys, ["weights", "list"])
    assert code == 0
    for name in WEIGHT_FILES:
        assert f"\n{name}: " in "\n" + out
        assert str(weights_dir() / name) in out  # the full destination, never cut
    code, out, _ = run_main(monkeypatch, capsys, ["weights", "list", "--json"])
    import json

    rows = json.loads(out)
    assert [r["name"] for r in rows] == list(WEIGHT_FILES) and all("metrics" in r for r in rows)
