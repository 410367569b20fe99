"""The RIP engine against its promises: lockstep batching, determinism, resume, paste-back."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from inpaintlab.errors import ConfigMismatchError, InpaintlabError
from inpaintlab.rip import RipConfig, run_rip
from inpaintlab.rip.schedule import checkpoint_iterations, iterations_for

from ..conftest import DEEP_RTOL, assert_close


def small_config(images: Path, **kw) -> RipConfig:
    base = dict(images=str(images), model="telea", mask_sizes=[16, 32], percent=200.0, checkpoint_every=50.0,
                seeds=[0, 1], metrics=["psnr", "ssim"], size=64, batch_size=3)
    base.update(kw)
    return RipConfig(**base)


def tables(out: Path) -> dict[str, pd.DataFrame]:
    con = sqlite3.connect(out / "results.sqlite")
    try:
        return {
            "metrics": pd.read_sql_query("SELECT * FROM metrics ORDER BY image, mask_size, seed, iteration, metric", con),
            "cells": pd.read_sql_query("SELECT * FROM cells ORDER BY image, mask_size, seed, iteration", con),
            "kept": pd.read_sql_query("SELECT * FROM kept ORDER BY image, mask_size, seed, iteration", con),
        }
    finally:
        con.close()


def assert_same_run(a: Path, b: Path) -> None:
    ta, tb = tables(a), tables(b)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True)
    for rel in ta["kept"]["path"]:
        assert np.array_equal(np.asarray(Image.open(a / rel)), np.asarray(Image.open(b / rel))), rel


def quiet(_msg: str) -> None:
    pass


def test_rows_schedule_and_zero_percent(image_dir, tmp_path):
    out = tmp_path / "run"
    s = run_rip(small_config(image_dir), out, log=quiet)
    t = tables(out)["metrics"]
    # 3 images x 2 seeds x (checkpoints of 16- and 32-cells) x 2 metrics
    n_ck = len(checkpoint_iterations(200, 50, 64, 16)) + len(checkpoint_iterations(200, 50, 64, 32))
    assert len(t) == 3 * 2 * n_ck * 2 == 3 * 2 * (5 + 5) * 2
    assert s.trajectories == 12
    assert sorted(t["percent"].unique()) == [0, 50, 100, 150, 200]
    zero = t[t["iteration"] == 0]
    assert np.isinf(zero[zero.metric == "psnr"]["value"]).all()
    assert np.allclose(zero[zero.metric == "ssim"]["value"], 1.0)
    # Inpainting moves the image away from the original: SSIM falls below 1 by the end.
    last = t[(t.metric == "ssim") & (t.percent == 200)]
    assert (last["value"] < 1).all()
    cells = tables(out)["cells"]
    assert len(cells) == 3 * 2 * (iterations_for(200, 64, 16) + iterations_for(200, 64, 32))
    rec = json.loads((out / "config.json").read_text())
    assert rec["config"]["mask_sizes"] == [16, 32] and "torch" in rec["versions"] and len(rec["images"]) == 3


def test_pixels_outside_every_chosen_cell_never_change(image_dir, tmp_path):
    out = tmp_path / "run"
    run_rip(small_config(image_dir, seeds=[0], percent=100.0), out, log=quiet)
    t = tables(out)
    untouched = 0
    for (image, ms, seed), cells in t["cells"].groupby(["image", "mask_size", "seed"]):
        kept = t["kept"][(t["kept"].image == image) & (t["kept"].mask_size == ms) & (t["kept"].seed == seed)]
        final = np.asarray(Image.open(out / kept.iloc[-1]["path"]))
        original = np.asarray(Image.open(out / "kept" / image / "original.png"))
        touched = np.zeros(final.shape[:2], bool)
        for r, c in zip(cells["row"], cells["col"]):
            touched[r * ms:(r + 1) * ms, c * ms:(c + 1) * ms] = True
        untouched += (~touched).sum()
        assert np.array_equal(final[~touched], original[~touched])
        assert not np.array_equal(final[touched], original[touched])
    assert untouched > 0  # draws with replacement leave some cells untouched at 100 %


def test_same_seed_same_table_and_batch_size_does_not_change_it(image_dir, tmp_path):
    run_rip(small_config(image_dir, batch_size=1), tmp_path / "a", log=quiet)
    run_rip(small_config(image_dir, batch_size=5), tmp_path / "b", log=quiet)
    run_rip(small_config(image_dir, batch_size=64), tmp_path / "c", log=quiet)
    assert_same_run(tmp_path / "a", tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "c")


def test_stochastic_backend_gives_the_same_table_at_batch_sizes_1_and_3(image_dir, tmp_path):
    """PatchMatch draws random numbers: each trajectory's own generator makes the batch irrelevant."""
    cfg = dict(model="patchmatch", mask_sizes=[32], percent=100.0, checkpoint_every=50.0)
    run_rip(small_config(image_dir, batch_size=1, **cfg), tmp_path / "a", log=quiet)
    run_rip(small_config(image_dir, batch_size=3, **cfg), tmp_path / "b", log=quiet)
    assert_same_run(tmp_path / "a", tmp_path / "b")
    # the check can fail: the backend's output does depend on its random stream
    import torch

    from inpaintlab.images import load_image
    from inpaintlab.inpainters import load_inpainter

    x = load_image(next(image_dir.iterdir()), size=64)
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 16:48, 16:48] = 1
    pm = load_inpainter("patchmatch")
    a, b = (pm(x, hole, generator=[torch.Generator().manual_seed(s)]) for s in (0, 1))
    assert not torch.equal(a, b)


def test_seeds_draw_different_cells(image_dir, tmp_path):
    run_rip(small_config(image_dir), tmp_path / "a", log=quiet)
    c = tables(tmp_path / "a")["cells"]
    s0 = c[c.seed == 0].groupby(["image", "mask_size"])["cell"].apply(list)
    s1 = c[c.seed == 1].groupby(["image", "mask_size"])["cell"].apply(list)
    assert (s0 != s1).all()


def test_rerun_of_a_finished_run_changes_nothing_and_batch_size_may_change(image_dir, tmp_path):
    out = tmp_path / "run"
    run_rip(small_config(image_dir), out, log=quiet)
    before = tables(out)
    s = run_rip(small_config(image_dir, batch_size=7), out, log=quiet)
    assert s.calls == 0 and s.resumed == 12
    after = tables(out)
    for k in before:
        pd.testing.assert_frame_equal(before[k], after[k])


def test_different_config_in_same_out_is_refused_naming_keys(image_dir, tmp_path):
    out = tmp_path / "run"
    run_rip(small_config(image_dir), out, log=quiet)
    with pytest.raises(ConfigMismatchError, match=r"config\.percent.*config\.seeds|config\.seeds.*config\.percent"):
        run_rip(small_config(image_dir, percent=100.0, seeds=[3]), out, log=quiet)


def test_unreadable_images_are_skipped_listed_and_lose_nothing(image_dir, tmp_path):
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "run"
    s = run_rip(small_config(image_dir, seeds=[0]), out, log=quiet)
    assert [Path(p).name for p, _ in s.failed_images] == ["broken.png"]
    assert set(tables(out)["metrics"]["image"]) == {"a", "b", "c"}


def test_no_replacement_and_float_state(image_dir, tmp_path):
    out = tmp_path / "run"
    run_rip(small_config(image_dir, seeds=[0], sampling="no-replacement", quantize=False, mask_sizes=[32],
                         percent=100.0), out, log=quiet)
    c = tables(out)["cells"]
    for _, part in c.groupby("image"):
        assert sorted(part["cell"]) == [0, 1, 2, 3]  # 100 % of a 2x2 grid without replacement


def test_bad_config_is_one_line(image_dir, tmp_path):
    with pytest.raises(InpaintlabError, match="does not divide"):
        run_rip(small_config(image_dir, mask_sizes=[24]), tmp_path / "x", log=quiet)
    with pytest.raises(InpaintlabError, match="unknown metric 'nope'"):
        run_rip(small_config(image_dir, metrics=["psnr", "nope"]), tmp_path / "y", log=quiet)
    with pytest.raises(InpaintlabError, match="'fid' is dataset-level"):
        run_rip(small_config(image_dir, metrics=["psnr", "fid"]), tmp_path / "y", log=quiet)
    with pytest.raises(InpaintlabError, match="'cd' needs the hole"):
        run_rip(small_config(image_dir, metrics=["cd"]), tmp_path / "y", log=quiet)
    assert not (tmp_path / "y").exists()  # refused before anything was written


SLOW_RUN = r'''
import sys, time
from inpaintlab.inpainters import INPAINTERS
from inpaintlab.inpainters.opencv import TeleaBackend

class SlowTelea(TeleaBackend):
    """Telea, slowed down so that a kill lands mid-run."""

    def inpaint_one(self, image, hole, rng):
        time.sleep(0.01)
        return super().inpaint_one(image, hole, rng)

INPAINTERS.register("slow-telea", SlowTelea)
from inpaintlab.rip import RipConfig, run_rip
cfg = RipConfig(images=sys.argv[1], model="slow-telea", mask_sizes=[16, 32], percent=200.0, checkpoint_every=25.0,
                seeds=[0, 1], metrics=["psnr", "ssim"], size=64, batch_size=int(sys.argv[3]))
run_rip(cfg, sys.argv[2], log=lambda m: None)
'''


def committed(out: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COALESCE(SUM(iteration), 0) FROM progress").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_at_any_moment_then_resume_gives_the_uninterrupted_table(image_dir, tmp_path):
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, str(script), str(image_dir), str(tmp_path / "ref"), "4"], check=True, env=env)
    out = tmp_path / "killed"
    total = 3 * 2 * (32 + 8)
    # Kill twice at different depths (batch size changes across the resumes too), then finish.
    for threshold, bs in ((1, 2), (total // 2, 5)):
        p = subprocess.Popen([sys.executable, str(script), str(image_dir), str(out), str(bs)], env=env)
        deadline = time.time() + 60
        while committed(out) < threshold and p.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 0 < committed(out) < total
    subprocess.run([sys.executable, str(script), str(image_dir), str(out), "3"], check=True, env=env)
    assert_same_run(tmp_path / "ref", out)


def save_random_lpips_weights(folder: Path, net: str, seed: int = 0) -> None:
    """Random AlexNet-LPIPS weights under the official file names (nothing pretrained ships in tests)."""
    import torch

    from inpaintlab.metrics.backbones import AlexNetFeatures

    torch.manual_seed(seed)
    backbone = AlexNetFeatures()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v for k, v in backbone.state_dict().items()}, folder / "alexnet-owt-7be5be79.pth")
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate([64, 192, 384, 256, 256])}
    torch.save(heads, folder / "alex.pth")


def test_lpips_rows_equal_direct_lpips_of_kept_images(image_dir, tmp_path, monkeypatch):
    import torch

    from inpaintlab.images import load_image
    from inpaintlab.metrics.lpips import load_lpips

    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    save_random_lpips_weights(tmp_path / "w", "alex")
    out = tmp_path / "run"
    # batch size 2 with 3 images: references of different images share a scoring batch.
    run_rip(small_config(image_dir, metrics=["lpips-alex"], seeds=[0], batch_size=2), out, log=quiet)
    t = tables(out)
    model = load_lpips("alex", device="cpu")
    merged = t["metrics"].merge(t["kept"], on=["image", "mask_size", "seed", "iteration", "percent"])
    assert len(merged) == len(t["metrics"]) > 0
    direct = []
    for row in merged.itertuples():
        orig = load_image(out / "kept" / row.image / "original.png", size=None)
        img = load_image(out / row.path, size=None)
        with torch.no_grad():
            direct.append(model(orig, img).item())
    # RIP scores in batches (cached reference features): float32 AlexNet round-off, relative to the
    # largest distance of the run; at iteration 0 (an image against itself) zero up to that round-off
    assert_close(merged["value"].to_numpy(), np.array(direct), DEEP_RTOL, "RIP's LPIPS rows vs direct LPIPS")
    scale = float(np.max(np.abs(direct)))
    assert (merged[merged.iteration == 0]["value"].abs() <= DEEP_RTOL * scale).all()
    assert (merged[merged.percent == 200]["value"] > 0).all()


def test_metric_without_weights_is_skipped_once_and_run_goes_on(image_dir, tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*a, **k):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    messages: list[str] = []
    out = tmp_path / "run"
    s = run_rip(small_config(image_dir, metrics=["psnr", "lpips-vgg"], seeds=[0]), out, log=messages.append)
    assert s.metrics == ["psnr"] and list(s.skipped_metrics) == ["lpips-vgg"]
    assert len(messages) == 1 and "lpips-vgg" in messages[0] and "vgg16-397923af.pth" in messages[0]
    assert str(tmp_path / "w") in messages[0]
    assert set(tables(out)["metrics"]["metric"]) == {"psnr"}
    assert json.loads((out / "config.json").read_text())["metrics_used"] == ["psnr"]


def test_rip_runs_on_a_hugging_face_dataset(tmp_path, monkeypatch):
    import io

    import datasets as hf_datasets

    from ..conftest import synthetic_photo

    rows = []
    for k in range(6):
        buf = io.BytesIO()
        Image.fromarray(synthetic_photo(64, 48, k)).save(buf, format="PNG")
        rows.append({"bytes": buf.getvalue(), "path": None})
    table = hf_datasets.Dataset.from_dict({"image": rows}, features=hf_datasets.Features({"image": hf_datasets.Image()}))
    monkeypatch.setattr(hf_datasets, "load_dataset", lambda name, *a, **k: table)
    out = tmp_path / "run"
    s = run_rip(small_config("hf:someone/art?sample=2&seed=0", seeds=[0]), out, log=quiet)
    names = sorted(set(tables(out)["metrics"]["image"]))
    assert s.trajectories == 2 * 2 and len(names) == 2 and all(n.startswith("train-") for n in names)
    rec = json.loads((out / "config.json").read_text())
    assert rec["config"]["images"] == "hf:someone/art?sample=2&seed=0"
    assert all(src.startswith("hf://someone/art/train/") for _, src in rec["images"])
