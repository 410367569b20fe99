"""Dataset-level metrics in `inpaintlab eval`: values against NumPy / sklearn on the random-weight
Inception, one read and one feature pass per image, one SVM for P-IDS and U-IDS, and resume."""

from __future__ import annotations

import collections
import contextlib
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.svm
import torch
from PIL import Image
from sklearn.svm import LinearSVC

from inpaintlab.evaluate import EvalRun, build_table
from inpaintlab.evaluate import runner as runner_module
from inpaintlab.evaluate.dataset import DatasetMetrics
from inpaintlab.metrics import inception

from ..metrics.test_fid import FILE, projection, random_pytorch_fid_state
from .conftest import grow
from .test_eval import cfg_for, frames

DATASET = ["fid", "p-ids", "u-ids"]
BUCKET = ["im2", "im3", "im8", "im9"]  # the 20-30 % bin after grow(); every other bin holds one image


def write_results(root: Path, holes: dict) -> None:
    """Results in ``res``: a third equal to their image, a third one grey level off in the hole, a third repainted."""
    (root / "res").mkdir()
    rng = np.random.default_rng(0)
    for i, (name, m) in enumerate(sorted(holes.items())):
        img = np.asarray(Image.open(root / "imgs" / f"{name}.png").convert("RGB")).astype(np.int64)
        if i % 3 == 1:
            img[m] += rng.choice([-1, 1], img[m].shape)
        elif i % 3 == 2:
            img[m] = img[m] // 2 + rng.integers(0, 128, img[m].shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "res" / f"{name}.png")


def load_file(path: Path) -> torch.Tensor:
    """A PNG as a (1,3,H,W) float32 tensor of ``k / 255`` (independently of inpaintlab's reader)."""
    a = np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / np.float32(255)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())[None]


class Counting:
    """A feature function that counts its calls and the images it was given."""

    def __init__(self, fn, identity: str):
        self.fn, self.identity, self.calls, self.images = fn, identity, 0, 0

    def __call__(self, images):
        self.calls += 1
        self.images += images.shape[0]
        return self.fn(images)


class CountingSVC(LinearSVC):
    fits = 0

    def fit(self, *a, **k):
        CountingSVC.fits += 1
        return super().fit(*a, **k)


#: 2048 -> 32: 2048-d FID (scipy's sqrtm) takes ~35 s on 2 cores, so all three metrics see projected features
PROJ = projection(32)


@pytest.fixture
def projected_inception(dataset, monkeypatch):
    """The real loading path on random pytorch-fid-layout weights, then a fixed projection; counted."""
    folder = dataset[0] / "inception"
    folder.mkdir()
    torch.save(random_pytorch_fid_state(), folder / FILE)
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(folder))
    real_loader, made = inception.load_inception, []

    def load(device="cpu", *, path=None, batch_size=50):
        if not made:
            inner = real_loader(device, path=path, batch_size=batch_size)
            made.append(Counting(lambda x: inner(x) @ PROJ, inner.identity + ":projected-32"))
        return made[0]

    monkeypatch.setattr(inception, "load_inception", load)
    return folder / FILE, made


@pytest.fixture
def cheap_features(monkeypatch):
    """FID, P-IDS and U-IDS on 4x4 average-pooled pixels (48-d) instead of Inception; counted."""
    ext = Counting(lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1), "pixels-4x4")
    monkeypatch.setattr(inception, "load_inception", lambda *a, **k: ext)
    return ext


@pytest.fixture
def count_reads(monkeypatch):
    """Counts inpaintlab's image reads (images through the image source, results) by path relative to the dataset root."""
    import inpaintlab.datasets.folder as folder_module

    reads: collections.Counter = collections.Counter()
    real = runner_module.read_image

    def counted(path, **kw):
        reads[Path(path).as_posix()] += 1
        return real(path, **kw)

    monkeypatch.setattr(runner_module, "read_image", counted)
    monkeypatch.setattr(folder_module, "read_image", counted)
    return reads


def relative(reads, root) -> dict[str, int]:
    return {Path(p).relative_to(root).as_posix(): n for p, n in reads.items()}


def test_values_equal_numpy_and_sklearn_on_the_same_inception(dataset, projected_inception, monkeypatch, one_thread):
    root, holes = dataset
    grow(root, holes)
    write_results(root, holes)
    monkeypatch.setattr(sklearn.svm, "LinearSVC", CountingSVC)
    CountingSVC.fits = 0
    cfg = cfg_for(root, results=str(root / "res"), metrics=["psnr", *DATASET], min_bucket_images=3)
    summary = EvalRun(cfg, root / "out", log=lambda m: None).run()
    weights_file, (extractor,) = projected_inception
    names = sorted(holes)
    # one feature pass per image and per side for all three metrics; one SVM per scope for P-IDS and U-IDS
    assert extractor.calls == extractor.images == 2 * len(names)
    assert CountingSVC.fits == 2
    d = frames(root / "out")["dataset_metrics"]
    assert summary.dataset_rows == 6 and set(d.bucket) == {"all", "20-30%"}

    # independent: PIL reads, a separately loaded network image by image, the projection; NumPy and sklearn
    net = inception.FIDInceptionV3().load_weights(weights_file)
    with torch.no_grad():
        fake = np.concatenate([(net(load_file(root / "res" / f"{n}.png")) @ PROJ).numpy() for n in names])
        real = np.concatenate([(net(load_file(root / "imgs" / f"{n}.png")) @ PROJ).numpy() for n in names])
    with contextlib.closing(sqlite3.connect(root / "out" / "results.sqlite")) as con:
        stored = {i: (np.frombuffer(f, "<f4"), np.frombuffer(r, "<f4"))
                  for i, f, r in con.execute("SELECT image, fake, real FROM features")}
    assert np.array_equal(np.stack([stored[n][0] for n in names]), fake)  # the same features, bit for bit
    assert np.array_equal(np.stack([stored[n][1] for n in names]), real)
    for scope, members in (("all", names), ("20-30%", BUCKET)):
        idx = [names.index(n) for n in members]
        f, r = fake[idx].astype(np.float64), real[idx].astype(np.float64)
        # FID: np.cov statistics; Tr (S1 S2)^(1/2) = sum sqrt(eigenvalues of S1 S2), similar to a PSD matrix
        s1, s2 = np.cov(f, rowvar=False), np.cov(r, rowvar=False)
        lam = np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)
        fid = np.sum((f.mean(0) - r.mean(0)) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(lam).sum()
        # P-IDS / U-IDS: Co-Mod-GAN's recipe, one LinearSVC(dual=False) on real (1) vs inpainted (0)
        x, labels = np.concatenate([r, f]), np.r_[np.ones(len(r)), np.zeros(len(f))]
        svm = LinearSVC(dual=False).fit(x, labels)
        u_ids = 1 - svm.score(x, labels)
        p_ids = np.mean(svm.decision_function(f) > svm.decision_function(r))
        got = d[d.bucket == scope].set_index("metric")
        assert (got["n_images"] == len(members)).all()
        # 10 and 4 images in 32-d: rank-deficient covariances, whose near-zero eigenvalues' square roots
        # turn round-off into ~1e-7 relative (scipy's sqrtm in the metric, eigenvalues here)
        assert got.loc["fid", "value"] == pytest.approx(fid, rel=2e-6)
        assert got.loc["u-ids", "value"] == pytest.approx(u_ids, abs=1e-12)
        assert got.loc["p-ids", "value"] == pytest.approx(p_ids, abs=1e-12)
        assert 0 < u_ids < 0.5 and fid > 0  # not a degenerate case: the equal results fool the SVM
    assert d.set_index(["bucket", "metric"]).loc[("all", "p-ids"), "value"] > 0


@pytest.mark.parametrize("mode", ["results", "model"])
def test_every_image_and_result_is_read_once(dataset, cheap_features, pooled_mse, count_reads, mode):
    root, holes = dataset
    grow(root, holes)
    write_results(root, holes)
    source = {"results": str(root / "res")} if mode == "results" else {"model": "telea"}
    cfg = cfg_for(root, metrics=["psnr", "cd", *DATASET, "test-pooled-mse"], min_bucket_images=3, **source)
    EvalRun(cfg, root / "out", log=lambda m: None).run()
    expected = {f"imgs/{n}.png": 1 for n in holes}
    if mode == "results":
        expected |= {f"res/{n}.png": 1 for n in holes}  # a model's results are scored from memory, never read
    assert relative(count_reads, root) == expected
    assert cheap_features.calls == cheap_features.images == 2 * len(holes)
    d = frames(root / "out")["dataset_metrics"]
    assert len(d) == 8 and set(d.bucket) == {"all", "20-30%"} and d["value"].notna().all()


def interrupted_after_first_batch(done, total):
    if done > 0:
        raise KeyboardInterrupt


@pytest.mark.parametrize("case", ["features", "fed-metric", "older-store", "killed-at-the-end"])
def test_resume_gives_the_uninterrupted_table(dataset, cheap_features, pooled_mse, count_reads, monkeypatch, case):
    root, holes = dataset
    grow(root, holes)
    metrics = ["psnr", *DATASET] + (["test-pooled-mse"] if case == "fed-metric" else [])
    cfg = cfg_for(root, model="telea", metrics=metrics, min_bucket_images=3)
    EvalRun(cfg, root / "full", log=lambda m: None).run()

    out = root / "cut"
    if case == "killed-at-the-end":  # every image scored, killed while computing the dataset-level metrics
        def killed(*a, **k):
            raise KeyboardInterrupt

        with monkeypatch.context() as mp:
            mp.setattr(DatasetMetrics, "finish", killed)
            with pytest.raises(KeyboardInterrupt):
                EvalRun(cfg, out, log=lambda m: None).run()
        first = sorted(holes)
    else:
        with pytest.raises(KeyboardInterrupt):
            EvalRun(cfg, out, log=lambda m: None, progress=interrupted_after_first_batch).run()
        first = sorted(holes)[:3]  # the first batch
    con = sqlite3.connect(out / "results.sqlite")
    with con:
        assert con.execute("SELECT COUNT(*) FROM features").fetchone()[0] == len(first)
        if case == "older-store":  # scored by a version that stored no features
            con.execute("DELETE FROM features")
    con.close()
    assert frames(out)["dataset_metrics"].empty

    count_reads.clear()
    summary = EvalRun(cfg_for(root, model="telea", metrics=metrics, min_bucket_images=3, batch_size=2), out,
                      log=lambda m: None).run()
    assert summary.resumed == len(first) and summary.dataset_rows == 2 * len(metrics[1:])
    rest = [n for n in sorted(holes) if n not in first]
    reads = relative(count_reads, root)
    if case in ("features", "killed-at-the-end"):
        assert reads == {f"imgs/{n}.png": 1 for n in rest}  # nothing scored before is read again
    else:  # the earlier images once more, at the end: for the fed metric, or for their missing features
        assert reads == {f"imgs/{n}.png": 1 for n in holes} | {f"cut/results/{n}.png": 1 for n in first}
    a, b = frames(root / "full"), frames(out)
    for t in ("images", "metrics"):
        pd.testing.assert_frame_equal(a[t], b[t])
    exact = a["dataset_metrics"]["metric"] != "test-pooled-mse"
    pd.testing.assert_frame_equal(a["dataset_metrics"][exact], b["dataset_metrics"][exact], check_exact=True)
    # a sum fed in another order (batches of 3 vs 2, then the earlier images): equal up to round-off
    pd.testing.assert_frame_equal(a["dataset_metrics"], b["dataset_metrics"], check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(build_table(root / "full"), build_table(out), check_exact=False, rtol=1e-12)
    with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as con:
        assert con.execute("SELECT COUNT(*) FROM features").fetchone()[0] == len(holes)
