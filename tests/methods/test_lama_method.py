"""LaMa on the shared loop: a few real training steps, exact resume with two optimisers, the inpainter's round trips."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.methods.lama.ffc import GENERATOR_PRESETS, build_generator
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.export import read_trained
from inpaintlab.train.loop import TrainRun

from ..metrics.test_suite import fake_lpips_weights
from .test_lama_network import BIG_LAMA_CONFIG


def config(**kw) -> TrainConfig:
    base = dict(method="lama", data="builtin", size=32, steps=4, val_every=2, checkpoint_every=2, batch_size=2,
                log_every=1, masks="rectangle", deterministic=True, val_count=2)
    return TrainConfig(**{**base, **kw})


SMALL = {"generator": "small", "perceptual_term": "none"}


def quiet(_: str) -> None:
    pass


def test_lama_trains_both_players_and_logs_every_loss(tmp_path):
    run = TrainRun(config(), SMALL, tmp_path / "run", log=quiet)
    run.prepare()
    g0 = {k: v.clone() for k, v in run.method.net_g.state_dict().items()}
    d0 = {k: v.clone() for k, v in run.method.net_d.state_dict().items()}
    run.run()
    g1, d1 = run.method.net_g.state_dict(), run.method.net_d.state_dict()
    assert any(not torch.equal(g0[k], g1[k]) for k in g0 if g0[k].is_floating_point())
    assert any(not torch.equal(d0[k], d1[k]) for k in d0 if d0[k].is_floating_point())
    m = pd.read_csv(tmp_path / "run" / "metrics.csv")
    train = m.dropna(subset=["train/l1"])
    assert list(train["step"]) == [0, 1, 2, 3]
    for key in ("train/l1", "train/adv_g", "train/fm", "train/loss_g", "train/loss_d"):
        assert np.isfinite(train[key]).all() and (train[key] > 0).all(), key
    # the generator's loss is the sum of its terms (perceptual off here)
    assert np.allclose(train["train/loss_g"], train["train/l1"] + train["train/adv_g"] + train["train/fm"], rtol=1e-6)
    assert m["val/psnr"].notna().sum() == 2  # validated at steps 2 and 4
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["perceptual_term"] == "none" and record["config"]["options"]["generator"] == "small"
    assert sorted(os.listdir(tmp_path / "run" / "samples")) == ["step-0000002.png", "step-0000004.png"]


def test_stop_and_resume_with_two_optimisers_gives_the_same_losses(tmp_path):
    TrainRun(config(steps=6), SMALL, tmp_path / "whole", log=quiet).run()
    TrainRun(config(steps=2), SMALL, tmp_path / "cut", log=quiet).run()
    TrainRun(config(steps=6), SMALL, tmp_path / "cut", log=quiet).run()
    a = pd.read_csv(tmp_path / "whole" / "metrics.csv").dropna(subset=["train/l1"]).reset_index(drop=True)
    b = pd.read_csv(tmp_path / "cut" / "metrics.csv").dropna(subset=["train/l1"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_export_to_inpainter_round_trip_is_the_trained_generator(tmp_path):
    out = tmp_path / "run"
    run = TrainRun(config(), SMALL, out, log=quiet)
    run.run()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 48, generator=g)
    hole = torch.zeros(2, 1, 40, 48)
    hole[:, :, 8:24, 10:30] = 1
    trained = run.method.net_g.eval()
    with torch.no_grad():
        direct = trained(torch.cat([x * (1 - hole), hole], 1))
    for where in (out, out / "export", out / "export" / "generator.safetensors"):
        res = load_inpainter("lama", checkpoint=str(where), device="cpu").run(x, hole)
        assert torch.equal(res.images[hole.expand_as(x) == 0], x[hole.expand_as(x) == 0])  # kept: bit for bit
        assert torch.allclose(res.raw, direct, rtol=0, atol=1e-6), where  # the same network, the same weights
    meta, _ = read_trained(out)
    assert meta["method"] == "lama" and meta["steps"] == 4 and meta["generator"]["ngf"] == 16


def test_a_big_lama_format_checkpoint_loads_through_the_inpainter(tmp_path):
    """LaMa's release layout: config.yaml + models/best.ckpt with generator.model.* keys among other entries."""
    folder = tmp_path / "big-lama"
    (folder / "models").mkdir(parents=True)
    (folder / "config.yaml").write_text(BIG_LAMA_CONFIG.replace("ngf: 64", "ngf: 16").replace("n_blocks: 18",
                                                                                            "n_blocks: 4"))
    torch.manual_seed(3)
    reference = build_generator(GENERATOR_PRESETS["small"]).eval()
    state = {f"generator.{k}": v for k, v in reference.state_dict().items()}
    state |= {"discriminator.model0.0.weight": torch.zeros(1)}  # the rest of a LaMa training module
    torch.save({"state_dict": state, "epoch": 40, "optimizer_states": []}, folder / "models" / "best.ckpt")
    x = torch.rand(1, 3, 32, 40)
    hole = torch.zeros(1, 1, 32, 40)
    hole[..., 5:20, 6:30] = 1
    with torch.no_grad():
        expected = reference(torch.cat([x * (1 - hole), hole], 1))
    for where in (folder, folder / "models" / "best.ckpt"):
        inp = load_inpainter("lama", checkpoint=str(where), device="cpu")
        assert inp.backend.source == "LaMa checkpoint"
        assert torch.allclose(inp.run(x, hole).raw, expected, rtol=0, atol=1e-6)


def test_lama_inpainter_errors_are_one_line(tmp_path):
    with pytest.raises(InpaintlabError, match="lama needs --option checkpoint"):
        load_inpainter("lama")
    with pytest.raises(InpaintlabError, match="does not exist"):
        load_inpainter("lama", checkpoint=str(tmp_path / "nowhere.ckpt"))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InpaintlabError) as e:
        load_inpainter("lama", checkpoint=str(tmp_path / "junk.ckpt"))
    assert "\n" not in str(e.value)


def test_perceptual_term_falls_back_to_lpips_vgg_and_is_recorded(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    fake_lpips_weights(monkeypatch, tmp_path / "w", "vgg")  # random LPIPS-VGG weights; no ADE20k encoder
    notes: list[str] = []
    run = TrainRun(config(steps=2), {"generator": "small"}, tmp_path / "run", log=notes.append)
    run.run()
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["perceptual_term"] == "lpips_vgg"
    assert sum("the perceptual term is LPIPS-VGG instead" in n for n in notes) == 1
    m = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["train/l1"])
    assert (m["train/perceptual"] > 0).all()


def test_the_frozen_perceptual_network_stays_out_of_checkpoints(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    fake_lpips_weights(monkeypatch, tmp_path / "w", "vgg")
    run = TrainRun(config(steps=2), {"generator": "small"}, tmp_path / "run", log=quiet)
    run.prepare()
    before = {k: v.clone() for k, v in run.method._perceptual.state_dict().items()}
    run.run()
    after = run.method._perceptual.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # frozen
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert {k.split(".")[0] for k in state} == {"net_g", "net_d"}
    assert not any(m.training for m in run.method._perceptual.modules())  # eval mode, after Lightning's train()


def test_a_trained_lama_runs_the_rip_benchmark(tmp_path, image_dir):
    from inpaintlab.rip import RipConfig, run_rip

    TrainRun(config(steps=2), SMALL, tmp_path / "run", log=quiet).run()
    cfg = RipConfig(images=str(image_dir), model="lama", model_options={"checkpoint": str(tmp_path / "run"),
                                                                         "device": "cpu"},
                    mask_sizes=[32], percent=50.0, checkpoint_every=25.0, seeds=[0], metrics=["psnr"], size=64)
    summary = run_rip(cfg, tmp_path / "rip", log=quiet)
    assert summary.trajectories == 3 and summary.calls == 2  # 2 iterations of 25 %, each one call for 3 images
    record = json.loads((tmp_path / "rip" / "config.json").read_text())
    assert record["config"]["model_options"] == {"checkpoint": str(tmp_path / "run"), "device": "cpu"}
