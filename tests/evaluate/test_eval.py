"""`inpaintlab eval` end to end on a small generated set: rows, buckets, errors, resume, compare."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from inpaintlab.errors import ConfigMismatchError, InpaintlabError
from inpaintlab.evaluate import EvalConfig, EvalRun, build_table
from inpaintlab.evaluate.commands import app as eval_app

from .conftest import N, S, grow  # the `dataset` and `pooled_mse` fixtures live there too

METRICS = ["psnr", "ssim", "psnr@hole", "mae@kept", "cd", "boundary-gradient", "kept-drift", "lpips-alex"]


def cfg_for(root, **kw) -> EvalConfig:
    base = dict(images=str(root / "imgs"), masks=str(root / "masks"), metrics=list(METRICS), batch_size=3)
    return EvalConfig(**{**base, **kw})


def frames(out):
    con = sqlite3.connect(out / "results.sqlite")
    try:
        return {t: pd.read_sql_query(f"SELECT * FROM {t} ORDER BY 1, 2", con)
                for t in ("images", "metrics", "dataset_metrics")}
    finally:
        con.close()


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float64) / 255


def test_model_run_rows_buckets_and_tables(dataset):
    root, holes = dataset
    logs = []
    summary = EvalRun(cfg_for(root, model="telea"), root / "out", log=logs.append).run()
    assert "lpips-alex" in summary.skipped and any("alexnet-owt-7be5be79.pth" in m for m in logs)
    f = frames(root / "out")
    used = [m for m in METRICS if m != "lpips-alex"]
    assert len(f["metrics"]) == N * len(used) and set(f["metrics"]["metric"]) == set(used)
    # hole ratios are the masks' and each image's PSNR is the closed form on the saved result
    for row in f["images"].itertuples():
        assert row.hole_ratio == holes[row.image].mean() and row.hole_pixels == holes[row.image].sum()
        res, ref = read(root / "out" / row.result), read(root / "imgs" / f"{row.image}.png")
        got = f["metrics"].query("image == @row.image").set_index("metric")["value"]
        assert got["psnr"] == pytest.approx(10 * np.log10(1 / ((res - ref) ** 2).mean()), rel=1e-5)
        assert got["mae@kept"] == 0.0 and got["kept-drift"] == 0.0  # telea leaves the kept pixels alone
        assert np.array_equal(res[~holes[row.image]], ref[~holes[row.image]])
    # the bucket table: each image in the LaMa bin of its ratio, [lo, hi)
    table = build_table(root / "out")
    ratios = {k: 100 * v.mean() for k, v in holes.items()}
    psnr = f["metrics"].query("metric == 'psnr'").set_index("image")["value"]
    for r in table.itertuples():
        if r.scheme == "all":
            members = list(ratios)
        else:
            lo, hi = (int(v) for v in r.bucket.rstrip("%").split("-"))
            members = [k for k, v in ratios.items() if lo <= v < hi]
        assert r.n == len(members)
        if r.bucket == "50-60%":
            assert members == ["im6"] and ratios["im6"] == 50.0
        if members:
            assert r.psnr == pytest.approx(psnr[members].mean(), rel=1e-9)
    lama = table[table.scheme == "lama"]
    assert list(lama.n) == [1, 1, 2, 1, 1, 1, 0, 0, 1, 0] and lama.n.sum() == N
    assert list(table[table.scheme == "strdiffusion"].bucket) == ["10-20%", "20-30%", "30-40%", "40-50%"]
    csv = pd.read_csv(root / "out" / "table.csv")
    assert list(csv.columns[3:]) == used and len(csv) == 15
    assert "| all | all | 8 |" in (root / "out" / "table.md").read_text()
    cfg = json.loads((root / "out" / "config.json").read_text())
    assert cfg["metrics_used"] == used and "torch" in cfg["versions"] and len(cfg["files"]) == N


def test_results_folder_and_kept_drift(dataset):
    root, holes = dataset
    (root / "res").mkdir()
    for name, m in holes.items():
        ref = read(root / "imgs" / f"{name}.png")
        res = np.where(m[..., None], 0.5, ref)
        if name == "im3":
            res = np.where(m[..., None], res, np.clip(ref + 8 / 255, 0, 1))  # moved the kept pixels
        Image.fromarray(np.round(res * 255).astype(np.uint8)).save(root / "res" / f"{name}.png")
    EvalRun(cfg_for(root, results=str(root / "res"), metrics=["psnr@hole", "kept-drift", "cd"]),
            root / "out", log=lambda m: None).run()
    got = frames(root / "out")["metrics"].pivot(index="image", columns="metric", values="value")
    for name, m in holes.items():
        ref = read(root / "imgs" / f"{name}.png")
        res = read(root / "res" / f"{name}.png")
        assert got.loc[name, "psnr@hole"] == pytest.approx(10 * np.log10(1 / ((ref[m] - res[m]) ** 2).mean()), rel=1e-5)
        # relative: the drift is ~0.03 or exactly 0, and the metric's float32 result rounds once (~6e-8)
        assert got.loc[name, "kept-drift"] == pytest.approx(np.abs(res - ref)[~m].mean(), rel=1e-6)
    assert got.loc["im3", "kept-drift"] > 0.02 and got.drop("im3")["kept-drift"].eq(0).all()


def test_unpaired_files_are_one_error_listing_them(dataset):
    root, _ = dataset
    (root / "masks" / "im2.png").unlink()
    (root / "masks" / "im5.png").unlink()
    Image.fromarray(np.zeros((S, S), np.uint8)).save(root / "masks" / "stray.png")
    with pytest.raises(InpaintlabError) as e:
        EvalRun(cfg_for(root, model="telea"), root / "out").prepare()
    msg = str(e.value)
    assert "\n" not in msg and "2 images without masks (im2, im5)" in msg and "1 masks without images (stray)" in msg
    assert not (root / "out").exists()


def test_bad_choices_are_refused(dataset):
    root, _ = dataset
    with pytest.raises(InpaintlabError, match="exactly one of --results"):
        EvalRun(cfg_for(root), root / "out")
    with pytest.raises(InpaintlabError, match="unknown metric 'nope'"):
        EvalRun(cfg_for(root, model="telea", metrics=["psnr", "nope"]), root / "out").prepare()
    Image.fromarray(np.zeros((S, S), np.uint8)).save(root / "masks" / "im0.png")
    with pytest.raises(InpaintlabError, match="im0.png is empty"):
        EvalRun(cfg_for(root, model="telea"), root / "out").prepare()


def test_config_mismatch_is_refused_naming_the_keys(dataset):
    root, _ = dataset
    EvalRun(cfg_for(root, model="telea", metrics=["psnr"]), root / "out", log=lambda m: None).run()
    with pytest.raises(ConfigMismatchError, match=r"differs in: config\.metrics \(.*\), config\.seed \(0 -> 3\)"):
        EvalRun(cfg_for(root, model="telea", metrics=["psnr", "cd"], seed=3), root / "out").prepare()
    # run-time keys may change
    EvalRun(cfg_for(root, model="telea", metrics=["psnr"], batch_size=5), root / "out", log=lambda m: None).run()


def test_resume_after_interruption_gives_the_uninterrupted_rows(dataset):
    root, _ = dataset
    EvalRun(cfg_for(root, model="telea"), root / "full", log=lambda m: None).run()

    def stop_after_first_batch(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        EvalRun(cfg_for(root, model="telea"), root / "cut", log=lambda m: None, progress=stop_after_first_batch).run()
    assert len(frames(root / "cut")["images"]) == 3  # the first batch was committed
    summary = EvalRun(cfg_for(root, model="telea", batch_size=2), root / "cut", log=lambda m: None).run()
    assert summary.resumed == 3
    a, b = frames(root / "full"), frames(root / "cut")
    for t in ("images", "metrics"):
        pd.testing.assert_frame_equal(a[t], b[t])
    pd.testing.assert_frame_equal(build_table(root / "full"), build_table(root / "cut"))


def test_stochastic_backend_rows_do_not_depend_on_the_batch_size(dataset):
    """PatchMatch draws random numbers: per-image generators from (seed, name) make the batch irrelevant."""
    root, _ = dataset
    metrics = ["psnr", "mae@hole", "kept-drift"]
    for bs in (1, 3):
        EvalRun(cfg_for(root, model="patchmatch", metrics=metrics, batch_size=bs), root / f"b{bs}",
                log=lambda m: None).run()
    a, b = frames(root / "b1"), frames(root / "b3")
    pd.testing.assert_frame_equal(a["metrics"], b["metrics"], check_exact=True)
    EvalRun(cfg_for(root, model="patchmatch", metrics=metrics, seed=1), root / "s1", log=lambda m: None).run()
    assert not frames(root / "s1")["metrics"].equals(a["metrics"])  # the seed does change the results


def test_dataset_level_metrics_overall_and_in_big_enough_buckets(dataset, pooled_mse):
    root, holes = dataset
    grow(root, holes)  # the 20-30 % bin holds 4 images then; the others hold 1, below the minimum of 2
    cfg = cfg_for(root, model="telea", metrics=["psnr", "test-pooled-mse"], min_bucket_images=2)
    EvalRun(cfg, root / "out", log=lambda m: None).run()
    d = frames(root / "out")["dataset_metrics"].set_index("bucket")
    assert set(d.index) == {"all", "20-30%"} and d.loc["20-30%", "n_images"] == 4

    def pooled(names):
        err = [((read(root / "out" / "results" / f"{n}.png") - read(root / "imgs" / f"{n}.png")) ** 2) for n in names]
        return float(np.sum([e.sum() for e in err]) / np.sum([e.size for e in err]))

    assert d.loc["all", "value"] == pytest.approx(pooled(list(holes)), rel=1e-6)
    assert d.loc["20-30%", "value"] == pytest.approx(pooled(["im2", "im3", "im8", "im9"]), rel=1e-6)
    table = build_table(root / "out").set_index(["scheme", "bucket"])
    assert table.loc[("strdiffusion", "20-30%"), "test-pooled-mse"] == d.loc["20-30%", "value"]
    assert np.isnan(table.loc[("lama", "10-20%"), "test-pooled-mse"])


def test_size_option_treats_image_mask_and_result_alike(dataset):
    root, holes = dataset
    EvalRun(cfg_for(root, model="telea", metrics=["psnr"], size=32), root / "out", log=lambda m: None).run()
    f = frames(root / "out")
    for row in f["images"].itertuples():
        assert (row.height, row.width, row.pixels) == (32, 32, 1024)
        # a 64 -> 32 area resize of the mask, hole where at least half of each 2x2 block was
        m = holes[row.image].reshape(32, 2, 32, 2).mean(axis=(1, 3)) >= 0.5
        assert row.hole_pixels == m.sum()
        assert Image.open(root / "out" / row.result).size == (32, 32)


def cli():
    app = typer.Typer()
    app.add_typer(eval_app, name="eval")

    @app.command()
    def other():  # a second command makes "eval" a sub-command, as in the main CLI
        pass

    return app


@pytest.mark.parametrize("args", [["eval", "--help"], ["eval", "compare", "--help"]])
def test_commands_have_help(args):
    r = CliRunner().invoke(cli(), args)
    assert r.exit_code == 0 and "Usage" in r.output


def test_cli_eval_and_compare(dataset):
    root, holes = dataset
    common = ["eval", "--images", str(root / "imgs"), "--masks", str(root / "masks"), "--metrics", "psnr,ssim,cd"]
    r = CliRunner().invoke(cli(), [*common, "--model", "telea", "--out", str(root / "a")])
    assert r.exit_code == 0, r.output
    assert "evaluated 8 images" in r.output and "psnr" in r.output
    r = CliRunner().invoke(cli(), [*common, "--model", "navier-stokes", "--out", str(root / "b")])
    assert r.exit_code == 0, r.output
    md = root / "cmp.md"
    r = CliRunner().invoke(cli(), ["eval", "compare", str(root / "a"), str(root / "b"), "--markdown", str(md)])
    assert r.exit_code == 0, r.output
    text = md.read_text()
    for run in ("a", "b"):
        psnr = build_table(root / run).query("bucket == 'all'")["psnr"].item()
        assert f"| {root / run} | 8 | {psnr:.4f} |" in text
    r = CliRunner().invoke(cli(), ["eval", "--images", str(root / "imgs"), "--out", str(root / "c")])
    assert isinstance(r.exception, InpaintlabError) and "--masks" in str(r.exception)


SLOW_EVAL = r'''
import sys, time
from inpaintlab.inpainters import INPAINTERS
from inpaintlab.inpainters.opencv import TeleaBackend

class SlowTelea(TeleaBackend):
    """Telea, slowed down so that a kill lands mid-run."""

    def inpaint_one(self, image, hole, rng):
        time.sleep(0.15)
        return super().inpaint_one(image, hole, rng)

INPAINTERS.register("slow-telea", SlowTelea)
from inpaintlab.evaluate import EvalConfig, EvalRun
root = sys.argv[1]
cfg = EvalConfig(images=root + "/imgs", masks=root + "/masks", metrics=["psnr", "ssim", "cd", "kept-drift"],
                 model="slow-telea", batch_size=int(sys.argv[3]))
EvalRun(cfg, sys.argv[2], log=lambda m: None).run()
'''


def test_sigkill_then_resume_gives_the_uninterrupted_rows(dataset):
    import os
    import signal
    import subprocess
    import sys
    import time

    root, _ = dataset
    script = root / "slow_eval.py"
    script.write_text(SLOW_EVAL)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, str(script), str(root), str(root / "ref"), "3"], check=True, env=env)
    out = root / "killed"

    def scored() -> int:
        try:
            con = sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True, timeout=1)
            try:
                return con.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:
            return 0

    p = subprocess.Popen([sys.executable, str(script), str(root), str(out), "2"], env=env)
    deadline = time.time() + 60
    while scored() < 2 and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the evaluation finished before it could be killed"
    assert 0 < scored() < N
    subprocess.run([sys.executable, str(script), str(root), str(out), "4"], check=True, env=env)
    a, b = frames(root / "ref"), frames(out)
    for t in ("metrics", "dataset_metrics"):
        pd.testing.assert_frame_equal(a[t], b[t], check_exact=True)
    pd.testing.assert_frame_equal(a["images"].drop(columns="result"), b["images"].drop(columns="result"))
    for name in a["images"]["image"]:
        assert np.array_equal(read(root / "ref" / "results" / f"{name}.png"), read(out / "results" / f"{name}.png"))


def test_eval_and_mask_names_take_a_hugging_face_dataset(tmp_path, monkeypatch):
    """`masks generate --names-from hf:...` names the masks after the rows, `eval --images hf:...` pairs them,
    and the scores equal an evaluation of the same images saved as files."""
    import io

    import datasets as hf_datasets

    from inpaintlab.cli import app

    from ..conftest import synthetic_photo

    arrays = [synthetic_photo(48, 40, k) for k in range(5)]
    rows = []
    for a in arrays:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        rows.append({"bytes": buf.getvalue(), "path": None})
    table = hf_datasets.Dataset.from_dict({"image": rows}, features=hf_datasets.Features({"image": hf_datasets.Image()}))
    monkeypatch.setattr(hf_datasets, "load_dataset", lambda name, *a, **k: table)
    spec = "hf:someone/toy?sample=3&seed=1"
    runner = CliRunner()
    r = runner.invoke(app, ["masks", "generate", "--kind", "rectangle", "--size", "48", "--names-from", spec,
                            "--out", str(tmp_path / "masks")])
    assert r.exit_code == 0, r.output
    names = sorted(p.stem for p in (tmp_path / "masks").glob("*.png"))
    assert len(names) == 3 and all(n.startswith("train-") for n in names)
    EvalRun(EvalConfig(images=spec, masks=str(tmp_path / "masks"), model="telea", metrics=["psnr", "mae@hole"],
                       size=48), tmp_path / "hf", log=lambda m: None).run()
    (tmp_path / "files").mkdir()  # the same rows as files
    for n in names:
        Image.fromarray(arrays[int(n.split("-")[1])]).save(tmp_path / "files" / f"{n}.png")
    EvalRun(EvalConfig(images=str(tmp_path / "files"), masks=str(tmp_path / "masks"), model="telea",
                       metrics=["psnr", "mae@hole"], size=48), tmp_path / "plain", log=lambda m: None).run()
    pd.testing.assert_frame_equal(frames(tmp_path / "hf")["metrics"], frames(tmp_path / "plain")["metrics"],
                                  check_exact=True)
    files = json.loads((tmp_path / "hf" / "config.json").read_text())["files"]
    assert [f[1] for f in files] == [f"hf://someone/toy/train/{int(n.split('-')[1])}" for n in names]
