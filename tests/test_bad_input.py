"""Bad input through the command line, as a new user types it: one line naming the problem, exit 2, nothing lost.

Every case runs ``inpaintlab`` in-process (``inpaintlab.cli.main``, the console entry point) on a
small workspace, and checks: a non-zero exit, no traceback, stderr is exactly one ``error: ...``
line holding the expected words, and (where the case says so) that nothing was written.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from inpaintlab.cli import main

from .conftest import synthetic_photo
from .test_cli import run_cli

S = 64  # side of the workspace's images


@dataclass
class Case:
    """One bad command line: ``{w}`` in an argument is the workspace folder (the current folder)."""

    id: str
    args: list[str]
    expect: str  # words the one error line must hold (a regular expression)
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = None
    untouched: list[str] = field(default_factory=list)  # workspace paths that must not exist afterwards


def run_main(monkeypatch, capsys, args: list[str]) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, *args)


# -- the workspace -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Images, masks, a finished RIP run and a finished evaluation, built once and copied per case."""
    import pytest as _pytest

    w = tmp_path_factory.mktemp("workspace")
    (w / "imgs").mkdir()
    (w / "masks").mkdir()
    for k in range(3):
        Image.fromarray(synthetic_photo(S, S, k)).save(w / "imgs" / f"im{k}.png")
        m = np.zeros((S, S), np.uint8)
        m[8 + 4 * k:30 + 4 * k, 10:40] = 255
        Image.fromarray(m).save(w / "masks" / f"im{k}.png")
    Image.fromarray(np.zeros((S, S), np.uint8)).save(w / "empty_mask.png")
    Image.fromarray(np.full((S, S), 255, np.uint8)).save(w / "full_mask.png")
    Image.fromarray(np.zeros((S // 2, S), np.uint8)).save(w / "small_mask.png")
    soft = np.zeros((S, S), np.uint8)
    soft[10:30, 10:30] = 128
    soft[12:20, 12:20] = 255
    Image.fromarray(soft).save(w / "soft_mask.png")
    coloured = np.zeros((S, S, 3), np.uint8)
    coloured[10:30, 10:30] = (255, 0, 0)
    Image.fromarray(coloured).save(w / "coloured_mask.png")
    rgba = np.concatenate([synthetic_photo(S, S, 5), np.full((S, S, 1), 200, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(w / "rgba.png")
    (w / "notes.txt").write_text("not an image")
    (w / "file").write_text("a file where a folder should be")
    data = (w / "imgs" / "im0.png").read_bytes()
    (w / "truncated.png").write_bytes(data[: len(data) // 3])
    (w / "photos").mkdir()  # ordinary photographs, not binary object masks
    Image.fromarray(synthetic_photo(S, S, 7)).save(w / "photos" / "p.png")
    # relative paths, run from the workspace: a copy of it is then the same workspace
    for args in (["rip", "run", "--images", "imgs", "--out", "rip", "--mask-sizes", "32",
                  "--percent", "100", "--metrics", "psnr", "--size", str(S), "--no-report"],
                 ["eval", "--images", "imgs", "--masks", "masks", "--model", "telea",
                  "--metrics", "psnr", "--out", "ev"]):
        mp = _pytest.MonkeyPatch()
        mp.chdir(w)
        mp.setattr(sys, "argv", ["inpaintlab", *args])
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None)
        finally:
            mp.undo()
    return w


@pytest.fixture
def workspace(template, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the template, the current folder (so ``{w}`` in a case is ``.``)."""
    w = tmp_path / "w"
    shutil.copytree(template, w)
    monkeypatch.chdir(w)
    return w


# -- setups ------------------------------------------------------------------------------------

def garbage_db(w, mp):
    (w / "rip" / "results.sqlite").write_bytes(b"this is not a database at all, just bytes " * 20)


def empty_db(w, mp):
    (w / "rip" / "results.sqlite").write_bytes(b"")


def truncated_db(w, mp):
    db = w / "rip" / "results.sqlite"
    db.write_bytes(db.read_bytes()[:200])


def foreign_db(w, mp):
    db = w / "rip" / "results.sqlite"
    db.unlink()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE songs (title TEXT)")
    con.commit()
    con.close()


def broken_config(w, mp):
    (w / "rip" / "config.json").write_text("{ this is not json")


def not_a_config(w, mp):
    (w / "rip" / "config.json").write_text("[1, 2, 3]")


def locked(w, mp):
    """Another process holds the RIP folder's lock (a child that sleeps while holding it)."""
    import subprocess

    code = ("import fcntl, os, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
            "f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush(); print('ready', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(w / "rip" / ".inpaintlab.lock")], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "ready"
    mp.setattr("inpaintlab.runs._test_child", child, raising=False)  # killed in the test's cleanup


def read_only_parent(w, mp):
    """A folder the user may not write into (as root, permission bits do not bind: refuse it the OS's way)."""
    import pathlib

    real = pathlib.Path.mkdir

    def mkdir(self, *a, **k):
        if "readonly" in self.parts:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    mp.setattr(pathlib.Path, "mkdir", mkdir)


def offline_hub(w, mp):
    mp.setattr("inpaintlab.hub.hub_reachable", lambda *a, **k: False)


W = "{w}"
RIP = ["rip", "run", "--images", f"{W}/imgs", "--size", str(S), "--mask-sizes", "32", "--percent", "100",
       "--metrics", "psnr", "--no-report"]
EVAL = ["eval", "--images", f"{W}/imgs", "--masks", f"{W}/masks", "--model", "telea", "--metrics", "psnr"]
INPAINT = ["inpaint", f"{W}/imgs/im0.png", f"{W}/masks/im0.png"]
GEN = ["masks", "generate", "--count", "2", "--size", "32", "--out", f"{W}/m"]
TRAIN = ["train", "lama", "--data", "builtin", "--size", "32", "--steps", "2", "--out", f"{W}/t"]

CASES = [
    # inpaint ---------------------------------------------------------------------------------
    Case("inpaint-missing-image", ["inpaint", f"{W}/nope.png", f"{W}/masks/im0.png", "-o", f"{W}/o.png"],
         "cannot read image .*nope.png: no such file", untouched=["o.png"]),
    Case("inpaint-text-as-image", ["inpaint", f"{W}/notes.txt", f"{W}/masks/im0.png", "-o", f"{W}/o.png"],
         "cannot read image .*notes.txt", untouched=["o.png"]),
    Case("inpaint-truncated-image", ["inpaint", f"{W}/truncated.png", f"{W}/masks/im0.png", "-o", f"{W}/o.png"],
         "cannot read image .*truncated.png", untouched=["o.png"]),
    Case("inpaint-soft-mask", ["inpaint", f"{W}/imgs/im0.png", f"{W}/soft_mask.png", "-o", f"{W}/o.png"],
         "is not binary", untouched=["o.png"]),
    Case("inpaint-coloured-mask", ["inpaint", f"{W}/imgs/im0.png", f"{W}/coloured_mask.png", "-o", f"{W}/o.png"],
         "is coloured", untouched=["o.png"]),
    Case("inpaint-mask-wrong-size", ["inpaint", f"{W}/imgs/im0.png", f"{W}/small_mask.png", "-o", f"{W}/o.png"],
         "32x64 .* but the image is 64x64", untouched=["o.png"]),
    Case("inpaint-empty-mask", ["inpaint", f"{W}/imgs/im0.png", f"{W}/empty_mask.png", "-o", f"{W}/o.png"],
         "is empty: nothing to inpaint", untouched=["o.png"]),
    Case("inpaint-full-mask", ["inpaint", f"{W}/imgs/im0.png", f"{W}/full_mask.png", "-o", f"{W}/o.png"],
         "covers the whole image", untouched=["o.png"]),
    Case("inpaint-unknown-model", [*INPAINT, "-o", f"{W}/o.png", "--model", "nope"],
         "unknown inpainter 'nope'; choose one of: .*telea", untouched=["o.png"]),
    Case("inpaint-option-not-a-number", [*INPAINT, "-o", f"{W}/o.png", "--option", "radius=abc"],
         "radius=abc: 'abc' is not a number; radius takes float, > 0", untouched=["o.png"]),
    Case("inpaint-unknown-option", [*INPAINT, "-o", f"{W}/o.png", "--option", "nosuch=1"],
         "inpainter 'telea' has no option nosuch; its options: radius", untouched=["o.png"]),
    Case("inpaint-option-infinite", [*INPAINT, "-o", f"{W}/o.png", "--option", "radius=1e999"],
         "not a finite number", untouched=["o.png"]),
    Case("inpaint-option-out-of-range", [*INPAINT, "-o", f"{W}/o.png", "--option", "radius=-1"],
         "-1.0 is out of range; radius takes float, > 0", untouched=["o.png"]),
    Case("inpaint-option-not-whole", [*INPAINT, "-o", f"{W}/o.png", "-m", "patchmatch", "--option", "patch_size=7.5"],
         "'7.5' is not a whole number", untouched=["o.png"]),
    Case("inpaint-option-even-patch", [*INPAINT, "-o", f"{W}/o.png", "-m", "patchmatch", "--option", "patch_size=8"],
         "patch_size must be odd", untouched=["o.png"]),
    Case("inpaint-option-bad-choice", [*INPAINT, "-o", f"{W}/o.png", "-m", "fsr", "--option", "quality=great"],
         "quality takes one of fast\\|best", untouched=["o.png"]),
    Case("inpaint-option-bad-bool", [*INPAINT, "-o", f"{W}/o.png", "-m", "sd2-inpainting", "--option",
                                     "literal_guidance=perhaps"], "not true or false", untouched=["o.png"]),
    Case("inpaint-option-without-value", [*INPAINT, "-o", f"{W}/o.png", "--option", "radius"],
         "--option 'radius' is not KEY=VALUE", untouched=["o.png"]),
    Case("inpaint-option-twice", [*INPAINT, "-o", f"{W}/o.png", "--option", "radius=3", "--option", "radius=4"],
         "radius is given twice", untouched=["o.png"]),
    Case("inpaint-unknown-compositing", [*INPAINT, "-o", f"{W}/o.png", "--compositing", "blur"],
         "unknown compositing mode 'blur'; choose one of: feather, hard, poisson", untouched=["o.png"]),
    Case("inpaint-unknown-suffix", [*INPAINT, "-o", f"{W}/o.xyz"], "unsupported suffix '.xyz'", untouched=["o.xyz"]),
    Case("inpaint-output-is-a-folder", [*INPAINT, "-o", f"{W}/imgs"], "it is a folder"),
    Case("inpaint-alpha-into-jpeg", ["inpaint", f"{W}/rgba.png", f"{W}/masks/im0.png", "-o", f"{W}/o.jpg"],
         "JPEG has no alpha channel", untouched=["o.jpg"]),
    Case("models-unknown", ["models", "nope"], "unknown inpainter 'nope'"),
    # rip run ---------------------------------------------------------------------------------
    Case("rip-out-is-a-file", [*RIP, "--out", f"{W}/file"], "--out .*file is a file, not a folder"),
    Case("rip-out-not-writable", [*RIP, "--out", f"{W}/readonly/run"], "cannot write into --out .*permission denied",
         setup=read_only_parent, untouched=["readonly"]),
    Case("rip-percent-nan", [*RIP, "--out", f"{W}/r", "--percent", "nan"], "must be finite numbers", untouched=["r"]),
    Case("rip-percent-inf", [*RIP, "--out", f"{W}/r", "--percent", "inf"], "must be finite numbers", untouched=["r"]),
    Case("rip-percent-negative", [*RIP, "--out", f"{W}/r", "--percent", "-5"], "--percent must be positive",
         untouched=["r"]),
    Case("rip-percent-huge", [*RIP, "--out", f"{W}/r", "--percent", "1e9"], "more than 10000", untouched=["r"]),
    Case("rip-checkpoint-zero", [*RIP, "--out", f"{W}/r", "--checkpoint-every", "0"],
         "--checkpoint-every must be positive", untouched=["r"]),
    Case("rip-seeds-huge-range", [*RIP, "--out", f"{W}/r", "--seeds", "0-99999999"], "more than 10,000 values",
         untouched=["r"]),
    Case("rip-seeds-text", [*RIP, "--out", f"{W}/r", "--seeds", "abc"], "--seeds: cannot read 'abc'", untouched=["r"]),
    Case("rip-seeds-backwards", [*RIP, "--out", f"{W}/r", "--seeds", "5-2"], "--seeds: cannot read '5-2'",
         untouched=["r"]),
    Case("rip-seeds-repeated", [*RIP, "--out", f"{W}/r", "--seeds", "1,1"], "must not repeat", untouched=["r"]),
    Case("rip-cell-not-dividing", [*RIP, "--out", f"{W}/r", "--mask-sizes", "24"], "does not divide", untouched=["r"]),
    Case("rip-cell-too-big", [*RIP, "--out", f"{W}/r", "--mask-sizes", str(S)], "leaves nothing", untouched=["r"]),
    Case("rip-no-cells", [*RIP, "--out", f"{W}/r", "--mask-sizes", ""], "--mask-sizes is empty", untouched=["r"]),
    Case("rip-no-metrics", [*RIP, "--out", f"{W}/r", "--metrics", ""], "--metrics is empty", untouched=["r"]),
    Case("rip-unknown-metric", [*RIP, "--out", f"{W}/r", "--metrics", "psnr,nope"], "unknown metric 'nope'",
         untouched=["r"]),
    Case("rip-dataset-metric", [*RIP, "--out", f"{W}/r", "--metrics", "fid"], "'fid' is dataset-level",
         untouched=["r"]),
    Case("rip-hole-metric", [*RIP, "--out", f"{W}/r", "--metrics", "cd"], "'cd' needs the hole mask",
         untouched=["r"]),
    Case("rip-metric-repeated", [*RIP, "--out", f"{W}/r", "--metrics", "psnr,psnr"], "repeats a metric",
         untouched=["r"]),
    Case("rip-bad-sampling", [*RIP, "--out", f"{W}/r", "--sampling", "bogus"], "--sampling must be one of",
         untouched=["r"]),
    Case("rip-bad-keep-images", [*RIP, "--out", f"{W}/r", "--keep-images", "all"], "--keep-images must be one of",
         untouched=["r"]),
    Case("rip-batch-zero", [*RIP, "--out", f"{W}/r", "--batch-size", "0"], "--batch-size must be positive",
         untouched=["r"]),
    Case("rip-device-banana", [*RIP, "--out", f"{W}/r", "--device", "banana"], "unknown device 'banana'",
         untouched=["r"]),
    Case("rip-device-cuda-missing", [*RIP, "--out", f"{W}/r", "--device", "cuda:99"],
         "no usable CUDA|there are \\d+ CUDA device", untouched=["r"]),  # CPU-only torch, or no 100th GPU
    Case("rip-pad-two-values", [*RIP, "--out", f"{W}/r", "--pad-color", "1,2"], "--pad-color must be three values",
         untouched=["r"]),
    Case("rip-pad-out-of-range", [*RIP, "--out", f"{W}/r", "--pad-color", "300,0,0"], "--pad-color must be three",
         untouched=["r"]),
    Case("rip-feature-cache-nan", [*RIP, "--out", f"{W}/r", "--feature-cache-gb", "nan"], "--feature-cache-gb",
         untouched=["r"]),
    Case("rip-size-zero", [*RIP, "--out", f"{W}/r", "--size", "0"], "--size must be positive", untouched=["r"]),
    Case("rip-images-nowhere", [*RIP, "--out", f"{W}/r", "--images", f"{W}/nowhere"], "no images found",
         untouched=["r"]),
    Case("rip-images-hf-no-name", [*RIP, "--out", f"{W}/r", "--images", "hf:"], "names no dataset", untouched=["r"]),
    Case("rip-images-hf-bad-option", [*RIP, "--out", f"{W}/r", "--images", "hf:a/b?colour=red"],
         "unknown option 'colour'", untouched=["r"]),
    Case("rip-images-hf-offline", [*RIP, "--out", f"{W}/r", "--images", "hf:someone/absent"],
         "cannot load Hugging Face dataset 'someone/absent'", setup=offline_hub, untouched=["r"]),
    Case("rip-unknown-model", [*RIP, "--out", f"{W}/r", "--model", "nope"], "unknown inpainter 'nope'",
         untouched=["r"]),
    Case("rip-bad-option", [*RIP, "--out", f"{W}/r", "--option", "radius=abc"], "'abc' is not a number",
         untouched=["r"]),
    Case("rip-bad-compositing", [*RIP, "--out", f"{W}/r", "--compositing", "blur"], "unknown compositing mode",
         untouched=["r"]),
    Case("rip-resume-other-percent", [*RIP, "--out", f"{W}/rip", "--percent", "200"],
         "differs in: config.percent \\(100.0 -> 200.0\\)"),
    Case("rip-resume-other-option", [*RIP, "--out", f"{W}/rip", "--option", "radius=5"],
         "differs in: config.model_options.radius \\(3.0 -> 5.0\\)"),
    Case("rip-resume-broken-config", [*RIP, "--out", f"{W}/rip"], "config.json is not a readable run configuration",
         setup=broken_config),
    Case("rip-resume-foreign-config", [*RIP, "--out", f"{W}/rip"], "config.json is not an inpaintlab run",
         setup=not_a_config),
    Case("rip-resume-garbage-db", [*RIP, "--out", f"{W}/rip"], "results.sqlite is not an SQLite", setup=garbage_db),
    Case("rip-second-process", [*RIP, "--out", f"{W}/rip"], "in use by another inpaintlab process \\(PID \\d+\\)",
         setup=locked),
    # rip report / export ---------------------------------------------------------------------------
    Case("report-on-a-file", ["rip", "report", f"{W}/file"], "is not a RIP run folder"),
    Case("report-on-an-empty-folder", ["rip", "report", f"{W}/imgs"], "is not a RIP run folder"),
    Case("report-garbage-db", ["rip", "report", f"{W}/rip"], "results.sqlite is not an SQLite", setup=garbage_db),
    Case("report-empty-db", ["rip", "report", f"{W}/rip"], "results.sqlite is empty \\(0 bytes\\)", setup=empty_db),
    Case("report-truncated-db", ["rip", "report", f"{W}/rip"], "results.sqlite is (damaged|not an inpaintlab)",
         setup=truncated_db),
    Case("report-foreign-db", ["rip", "report", f"{W}/rip"], "not an inpaintlab RIP results database \\(no table",
         setup=foreign_db),
    Case("report-broken-config", ["rip", "report", f"{W}/rip"], "config.json is not a readable run configuration",
         setup=broken_config),
    Case("report-on-an-evaluation", ["rip", "report", f"{W}/ev"], "not an inpaintlab RIP results database"),
    Case("export-to-a-folder", ["rip", "export", f"{W}/rip", "-o", f"{W}/imgs"], "it is a folder"),
    Case("export-unknown-format", ["rip", "export", f"{W}/rip", "--format", "xml"], "unknown export format 'xml'"),
    Case("export-suffix-disagrees", ["rip", "export", f"{W}/rip", "--format", "csv", "-o", f"{W}/x.parquet"],
         "--format csv but the output .*x.parquet ends in .parquet", untouched=["x.parquet"]),
    Case("export-unknown-suffix", ["rip", "export", f"{W}/rip", "-o", f"{W}/x.txt"], "cannot tell the format",
         untouched=["x.txt"]),
    Case("export-garbage-db", ["rip", "export", f"{W}/rip"], "results.sqlite is not an SQLite", setup=garbage_db),
    # eval ------------------------------------------------------------------------------------------------
    Case("eval-missing-masks", ["eval", "--images", f"{W}/imgs", "--out", f"{W}/e"], "eval needs --masks",
         untouched=["e"]),
    Case("eval-model-and-results", [*EVAL, "--results", f"{W}/imgs", "--out", f"{W}/e"], "exactly one of",
         untouched=["e"]),
    Case("eval-option-without-model", ["eval", "--images", f"{W}/imgs", "--masks", f"{W}/masks", "--results",
                                       f"{W}/imgs", "--option", "radius=3", "--out", f"{W}/e"],
         "--option only applies with --model", untouched=["e"]),
    Case("eval-unpaired", ["eval", "--images", f"{W}/imgs", "--masks", f"{W}/photos", "--model", "telea",
                           "--out", f"{W}/e"], "unpaired files", untouched=["e"]),
    Case("eval-unknown-metric", [*EVAL, "--metrics", "nope", "--out", f"{W}/e"], "unknown metric 'nope'",
         untouched=["e"]),
    Case("eval-unknown-region", [*EVAL, "--metrics", "psnr@border", "--out", f"{W}/e"],
         "supports region image, hole, kept, not 'border'", untouched=["e"]),
    Case("eval-size-zero", [*EVAL, "--size", "0", "--out", f"{W}/e"], "--size must be positive", untouched=["e"]),
    Case("eval-min-bucket-one", [*EVAL, "--min-bucket-images", "1", "--out", f"{W}/e"], "at least 2",
         untouched=["e"]),
    Case("eval-out-is-a-file", [*EVAL, "--out", f"{W}/file"], "is a file, not a folder"),
    Case("eval-device-banana", [*EVAL, "--device", "banana", "--out", f"{W}/e"], "unknown device", untouched=["e"]),
    Case("eval-bad-option", [*EVAL, "--option", "radius=abc", "--out", f"{W}/e"], "'abc' is not a number",
         untouched=["e"]),
    Case("eval-hf-bad-limit", ["eval", "--images", "hf:a/b?limit=abc", "--masks", f"{W}/masks", "--model", "telea",
                               "--out", f"{W}/e"], "limit must be a whole number", untouched=["e"]),
    Case("eval-hf-offline", ["eval", "--images", "hf:someone/absent", "--masks", f"{W}/masks", "--model", "telea",
                             "--out", f"{W}/e"], "cannot load Hugging Face dataset 'someone/absent'",
         setup=offline_hub, untouched=["e"]),
    Case("eval-resume-other-seed", [*EVAL, "--seed", "3", "--out", f"{W}/ev"], "differs in: config.seed \\(0 -> 3\\)"),
    Case("compare-markdown-into-a-folder", ["eval", "compare", f"{W}/ev", "--markdown", f"{W}/imgs"], "it is a folder"),
    Case("compare-a-rip-run", ["eval", "compare", f"{W}/rip"], "not an inpaintlab evaluation results database"),
    Case("compare-a-plain-folder", ["eval", "compare", f"{W}/imgs"], "is not an evaluation folder"),
    # masks ---------------------------------------------------------------------------------------------------
    Case("masks-unknown-kind", [*GEN, "--kind", "nope"], "unknown mask generator 'nope'", untouched=["m"]),
    Case("masks-unknown-param", [*GEN, "--kind", "comod", "--param", "nope=1"], "has no parameter nope",
         untouched=["m"]),
    Case("masks-param-not-a-number", [*GEN, "--kind", "comod", "--param", "lo=abc"], "'abc' is not a number",
         untouched=["m"]),
    Case("masks-param-not-whole", [*GEN, "--kind", "grid-cell", "--param", "cell=7.5"], "not a whole number",
         untouched=["m"]),
    Case("masks-count-zero", [*GEN, "--kind", "comod", "--count", "0"], "--count must be at least 1",
         untouched=["m"]),
    Case("masks-size-tiny", [*GEN, "--kind", "comod", "--size", "4"], "--size must be at least 8", untouched=["m"]),
    Case("masks-object-without-folder", [*GEN, "--kind", "object"], "needs --param folder", untouched=["m"]),
    Case("masks-object-photos", [*GEN, "--kind", "object", "--param", f"folder={W}/photos"],
         "object masks must be binary", untouched=["m"]),
    Case("masks-names-from-nowhere", [*GEN, "--kind", "comod", "--names-from", f"{W}/nowhere"], "no images found",
         untouched=["m"]),
    Case("masks-preview-no-manifest", ["masks", "preview", f"{W}/imgs"], "has no manifest.json"),
    # datasets ------------------------------------------------------------------------------------------------
    Case("misato-domain-not-name-dir", ["datasets", "build-misato", "--domain", "indoor", "--out", f"{W}/b"],
         "is not NAME=DIR", untouched=["b"]),
    Case("misato-per-domain-zero", ["datasets", "build-misato", "--domain", f"a={W}/imgs", "--per-domain", "0",
                                    "--out", f"{W}/b"], "--per-domain must be a positive integer", untouched=["b"]),
    # train ---------------------------------------------------------------------------------------------------
    Case("train-unknown-option", [*TRAIN, "--set", "nosuch=1"], "training method 'lama' has no option nosuch",
         untouched=["t"]),
    Case("train-option-not-a-number", [*TRAIN, "--set", "lr_g=abc"], "--set lr_g=abc: 'abc' is not a number",
         untouched=["t"]),
    Case("train-option-bad-choice", [*TRAIN, "--set", "generator=huge"], "generator takes one of big-lama",
         untouched=["t"]),
    Case("train-size-not-multiple-of-8", [*TRAIN, "--size", "30"], "--size must be a multiple of 8",
         untouched=["t"]),
    Case("train-steps-zero", [*TRAIN, "--steps", "0"], "--steps must be a positive whole number", untouched=["t"]),
    Case("train-bad-precision", [*TRAIN, "--precision", "fp8"], "--precision must be one of", untouched=["t"]),
    Case("train-bad-holdout", [*TRAIN, "--holdout", "left"], "--holdout must be right or images", untouched=["t"]),
    Case("train-bad-max-time", [*TRAIN, "--max-time", "12h"], "--max-time must be DD:HH:MM:SS", untouched=["t"]),
    Case("train-unknown-mask-kind", [*TRAIN, "--masks", "nope"], "unknown mask generator 'nope'", untouched=["t"]),
    Case("train-data-nowhere", [*TRAIN, "--data", f"{W}/nowhere"], "no images found", untouched=["t"]),
    Case("train-too-few-images-to-hold-out", [*TRAIN, "--data", f"{W}/imgs", "--holdout", "images"],
         "holding out 16 for validation leaves none", untouched=["t"]),
    Case("train-config-missing", [*TRAIN, "--config", f"{W}/nope.yaml"], "cannot read --config", untouched=["t"]),
    Case("train-config-not-a-mapping", [*TRAIN, "--config", f"{W}/notes.txt"], "must hold a mapping",
         untouched=["t"]),
    Case("train-export-no-run", ["train", "export", f"{W}/imgs"], "holds no checkpoints/last.ckpt"),
    Case("lama-without-checkpoint", [*INPAINT, "-o", f"{W}/o.png", "-m", "lama"], "lama needs --option checkpoint",
         untouched=["o.png"]),
    Case("datasets-unknown-source-prefix-is-a-path", ["masks", "generate", "--kind", "comod", "--out", f"{W}/m",
                                                      "--names-from", "nosuch:thing"], "no images found",
         untouched=["m"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(case: Case, workspace, monkeypatch, capsys):
    if case.setup is not None:
        case.setup(workspace, monkeypatch)
    args = [a.replace(W, ".") for a in case.args]
    try:
        code, out, err = run_main(monkeypatch, capsys, args)
    finally:
        child = getattr(__import__("inpaintlab.runs").runs, "_test_child", None)
        if child is not None:
            child.kill()
            child.wait()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    import re

    assert re.search(case.expect, lines[0]), lines[0]
    for rel in case.untouched:
        assert not (workspace / rel).exists(), f"{rel} was written"


def test_the_table_is_large_and_unique():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
