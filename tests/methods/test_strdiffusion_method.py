"""IR-SDE and StrDiffusion on the shared loop: the three parts into one folder, the inpainters that load them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.methods.strdiffusion.sampler import guidance_start
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.export import read_trained
from inpaintlab.train.loop import TrainRun

TINY = {"nf": 8, "depth": 2, "T": 10}


def quiet(_: str) -> None:
    pass


def config(method, **kw) -> TrainConfig:
    base = dict(method=method, data="builtin", size=32, steps=2, val_every=2, checkpoint_every=2, batch_size=2,
                log_every=1, masks="lama-medium", deterministic=True, val_count=2)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def strdiffusion_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("sd") / "run"
    for part in ("structure", "texture", "discriminator"):
        TrainRun(config("strdiffusion"), {**TINY, "part": part, "disc_ngf": 4}, out, log=quiet).run()
    return out


@pytest.fixture(scope="module")
def irsde_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("irsde") / "run"
    TrainRun(config("ir-sde"), TINY, out, log=quiet).run()
    return out


def test_the_three_parts_train_into_their_own_subfolders(strdiffusion_folder):
    for part in ("structure", "texture", "discriminator"):
        run = strdiffusion_folder / part
        meta, state = read_trained(run)
        assert meta["method"] == "strdiffusion" and meta["generator"]["part"] == part
        assert meta["generator"]["sde"] == {"T": 10, "max_sigma": 30.0, "eps": 0.005}
        assert meta["generator"]["edge_sigma"] == 3.0 and meta["generator"]["edges"] == "known"
        m = pd.read_csv(run / "metrics.csv")
        assert np.isfinite(m["train/loss"].dropna()).all() and m["val/loss"].notna().sum() == 1
    record = json.loads((strdiffusion_folder / "texture" / "config.json").read_text())
    assert record["config"]["options"]["target"] == "eq4"
    keys = read_trained(strdiffusion_folder / "texture")[1]
    assert "downs.0.4.norm_0.mlp_shared.0.weight" in keys  # the SPADE texture network, the reference's key names


def test_the_paper_target_and_the_reference_edges_train_too(tmp_path):
    run = TrainRun(config("strdiffusion"), {**TINY, "part": "texture", "target": "eq11", "edges": "complete"},
                   tmp_path / "run", log=quiet)
    run.run()
    assert np.isfinite(pd.read_csv(tmp_path / "run" / "texture" / "metrics.csv")["train/loss"].dropna()).all()


def test_the_discriminator_refuses_a_batch_its_stddev_groups_cannot_split(tmp_path):
    with pytest.raises(InpaintlabError, match="multiple of 4"):
        TrainRun(config("strdiffusion", batch_size=6), {**TINY, "part": "discriminator"}, tmp_path / "x",
                 log=quiet).prepare()


def sample_pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 16, 16, generator=g)
    hole = torch.zeros(2, 1, 16, 16)
    hole[..., 4:10, 3:11] = 1
    return images, hole


def test_ir_sde_inpaints_each_sample_as_it_would_alone(irsde_run, one_thread):
    model = load_inpainter("ir-sde", checkpoint=str(irsde_run), device="cpu")
    images, hole = sample_pair()
    gens = lambda: [torch.Generator().manual_seed(s) for s in (4, 5)]  # noqa: E731
    both = model.backend.inpaint(images, hole, generator=gens())
    g = gens()
    alone = torch.cat([model.backend.inpaint(images[i:i + 1], hole[i:i + 1], generator=[g[i]]) for i in range(2)])
    assert torch.allclose(both, alone, rtol=0, atol=1e-5)  # batched convolutions sum in another order
    assert model.backend.last_nfe == [10]
    out = model(images, hole, generator=gens())
    assert torch.equal(out[hole.expand_as(out) < 0.5], images[hole.expand_as(images) < 0.5])
    repaint = load_inpainter("ir-sde", checkpoint=str(irsde_run), device="cpu", sampler="repaint", jump=5, resample=2)
    repaint.backend.inpaint(images, hole, generator=gens())
    assert repaint.backend.last_nfe == [15, 15]  # the first stretch of 5 twice, the last once


def test_the_strdiffusion_inpainter_loads_the_folder_and_counts_its_evaluations(strdiffusion_folder, one_thread):
    images, hole = sample_pair(1)
    plain = load_inpainter("strdiffusion", checkpoint=str(strdiffusion_folder), device="cpu", resampling=False)
    plain.backend.inpaint(images, hole, generator=torch.Generator().manual_seed(0))
    guided = 10 - guidance_start(10) + 1
    assert plain.backend.last_nfe == [10 + guided] * 2 and plain.backend.last_disc_calls == [0, 0]
    full = load_inpainter("strdiffusion", checkpoint=str(strdiffusion_folder), device="cpu")
    out = full(images, hole, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all() and all(n >= 10 + guided for n in full.backend.last_nfe)
    assert all(d >= guided for d in full.backend.last_disc_calls)
    paper = load_inpainter("strdiffusion", checkpoint=str(strdiffusion_folder), device="cpu", sampler="paper",
                           max_tries=2)
    paper(images, hole, generator=torch.Generator().manual_seed(0))
    assert all(20 <= n <= 20 + 2 * 2 * 10 for n in paper.backend.last_nfe)


def test_the_oracle_diagnostic_reads_the_true_structure_and_needs_no_structure_sampling(strdiffusion_folder,
                                                                                        one_thread):
    images, hole = sample_pair(1)
    oracle = load_inpainter("strdiffusion", checkpoint=str(strdiffusion_folder), device="cpu", structure="oracle")
    assert "discriminator" not in oracle.backend.nets
    out = oracle(images, hole, generator=torch.Generator().manual_seed(0))
    assert oracle.backend.last_nfe == [10] * 2 and torch.equal(out * (1 - hole), images * (1 - hole))
    other = images * (1 - hole) + (1 - images) * hole  # other hole content: another true structure
    again = oracle(other, hole, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(again * hole, out * hole)  # the oracle reads the hole (the network arm never does)
    with pytest.raises(InpaintlabError, match="drop sampler=paper"):
        load_inpainter("strdiffusion", checkpoint=str(strdiffusion_folder), structure="oracle", sampler="paper")


def test_sampling_with_another_schedule_or_missing_parts_is_one_line(strdiffusion_folder, irsde_run, tmp_path):
    with pytest.raises(InpaintlabError, match="trained with T=10; sampling with T=100 is refused"):
        load_inpainter("strdiffusion", checkpoint=str(strdiffusion_folder), T=100)
    with pytest.raises(InpaintlabError, match="trained with edge_sigma=3.0"):
        load_inpainter("strdiffusion", checkpoint=str(strdiffusion_folder), edge_sigma=2.0)
    with pytest.raises(InpaintlabError, match="has no structure, texture, discriminator run"):
        load_inpainter("strdiffusion", checkpoint=str(irsde_run))
    with pytest.raises(InpaintlabError, match="not a ir-sde one"):
        load_inpainter("ir-sde", checkpoint=str(strdiffusion_folder / "texture"))
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(strdiffusion_folder, mixed)
    shutil.rmtree(mixed / "structure")
    TrainRun(config("strdiffusion"), {**TINY, "T": 12, "part": "structure"}, mixed, log=quiet).run()
    with pytest.raises(InpaintlabError, match="different sde"):
        load_inpainter("strdiffusion", checkpoint=str(mixed))
    shutil.rmtree(mixed / "discriminator")
    with pytest.raises(InpaintlabError, match="resampling=false"):
        load_inpainter("strdiffusion", checkpoint=str(mixed))


def test_the_part_flag_trains_into_the_shared_folder_from_the_command_line(monkeypatch, capsys, tmp_path):
    from ..test_cli import run_cli

    code, out, err = run_cli(monkeypatch, capsys, "train", "strdiffusion", "--part", "structure", "--nf", "8",
                             "--depth", "2", "--T", "10", "--size", "32", "--steps", "1", "--batch-size", "2",
                             "--val-every", "1", "--checkpoint-every", "1", "--val-count", "2", "--masks",
                             "lama-medium", "--out", str(tmp_path / "sd"))
    assert code == 0, err
    assert (tmp_path / "sd" / "structure" / "export" / "generator.json").is_file()
    assert "train texture and discriminator with --out" in out


def test_ir_sde_trains_with_its_own_recipe_unless_told_otherwise(monkeypatch, capsys, tmp_path):
    """ir-sde's command defaults are IR-SDE's (batch 4 of 128 crops, ema_pytorch 0.995 every 10 after 100)."""
    from ..test_cli import run_cli

    code, out, err = run_cli(monkeypatch, capsys, "train", "ir-sde", "--help")
    assert code == 0 and "--ema-decay 0.995 --ema-every 10 --ema-warmup 100" in " ".join(out.split())
    tiny = ["--nf", "8", "--depth", "2", "--T", "10", "--size", "32", "--steps", "1", "--val-every", "1",
            "--checkpoint-every", "1", "--val-count", "2", "--masks", "lama-medium"]
    code, out, err = run_cli(monkeypatch, capsys, "train", "ir-sde", *tiny, "--out", str(tmp_path / "a"))
    assert code == 0, err
    record = json.loads((tmp_path / "a" / "config.json").read_text())["config"]
    assert (record["batch_size"], record["ema_decay"], record["ema_every"], record["ema_warmup"]) == (4, 0.995, 10, 100)
    settings = tmp_path / "settings.yaml"
    settings.write_text("ema_decay: 0.9\nbatch_size: 2\n")  # a --config file beats the method's defaults
    code, out, err = run_cli(monkeypatch, capsys, "train", "ir-sde", *tiny, "--config", str(settings),
                             "--ema-every", "1", "--out", str(tmp_path / "b"))
    assert code == 0, err
    record = json.loads((tmp_path / "b" / "config.json").read_text())["config"]
    assert (record["batch_size"], record["ema_decay"], record["ema_every"], record["ema_warmup"]) == (2, 0.9, 1, 100)
