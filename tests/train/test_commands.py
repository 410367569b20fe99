"""``inpaintlab train``: the method commands and their help, --config and its precedence, train export."""

from __future__ import annotations

import json

import pytest
import torch

from inpaintlab.testing import toy_method_class
from inpaintlab.train.export import read_trained
from inpaintlab.train.method import METHODS

from ..test_cli import run_cli


@pytest.fixture(autouse=True)
def toy():
    METHODS.register("toy", toy_method_class())
    yield
    METHODS.unregister("toy")


def test_train_help_lists_the_methods_and_each_methods_options(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(monkeypatch, capsys, "train", "--help")
    assert code == 0 and "lama" in out and "toy" in out and "export" in out
    code, out, _ = run_cli(monkeypatch, capsys, "train", "lama", "--help")
    assert code == 0
    assert "generator (one of big-lama|lama-fourier|small; default big-lama)" in out
    assert "lr_d (float, > 0; default 0.0001)" in out and "--max-time" in out


def test_config_file_then_flags_then_set(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("size: 40\nsteps: 2\nval-every: 2\nlr: 0.02\nwidth: 5\nmasks: rectangle\nval_count: 3\n")
    out = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "train", "toy", "--out", str(out), "--config", str(cfg),
                           "--size", "32", "--set", "width=4")
    assert code == 0, err
    record = json.loads((out / "config.json").read_text())
    c = record["config"]
    assert (c["size"], c["steps"], c["val_every"], c["masks"], c["val_count"]) == (32, 2, 2, "rectangle", 3)
    assert c["options"] == {"lr": 0.02, "width": 4}
    code, stdout, err = run_cli(monkeypatch, capsys, "train", "export", str(out), "--to", str(tmp_path / "again"))
    assert code == 0, err
    meta, state = read_trained(tmp_path / "again")
    _, exported = read_trained(out)
    assert meta["method"] == "toy" and meta["steps"] == 2 and all(torch.equal(state[k], exported[k]) for k in state)
