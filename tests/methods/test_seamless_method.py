"""Seamless Borders on the shared loop: the VAE (Eq. 6) and the two-step denoiser, and the ``seamless`` inpainter."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.methods.seamless.method import SeamlessMaskOptions, training_holes
from inpaintlab.testing import save_tiny_pipeline
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.export import read_trained
from inpaintlab.train.loop import TrainRun

from ..conftest import DEEP_RTOL, assert_close


def quiet(_: str) -> None:
    pass


def config(method, **kw) -> TrainConfig:
    base = dict(method=method, data="builtin", size=32, steps=2, val_every=2, checkpoint_every=2, batch_size=2,
                log_every=1, masks="lama-medium", mask_size=128, deterministic=True, val_count=2)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A tiny 4-channel SD pipeline (text encoder, tokenizer, VAE of factor 2, UNet) saved as SD-1.5's would be."""
    return str(save_tiny_pipeline(tmp_path_factory.mktemp("sd"), in_channels=4))


@pytest.fixture(scope="module")
def denoiser_run(pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("denoiser") / "run"
    TrainRun(config("seamless-denoiser"), {"pretrained": pipeline, "val_steps": "2", "prompt": "scenery"}, out,
             log=quiet).run()
    return out


def test_training_holes_mix_the_data_holes_borders_and_empty_ones():
    torch.manual_seed(0)
    o = SeamlessMaskOptions(outpaint_share=0.5, outpaint_min=0.4, outpaint_max=0.8)
    data = torch.zeros(4000, 1, 20, 30)
    data[:, :, 2:5, 3:9] = 1  # a recognisable data hole
    holes = training_holes(data, o, empty_share=0.1)
    empty = holes.sum((1, 2, 3)) == 0
    kept = (holes == data).flatten(1).all(1)
    border = ~empty & ~kept
    n = len(holes)
    for share, want in ((empty, 0.1), (border, 0.5), (kept, 0.4)):
        assert abs(float(share.float().mean()) - want) < 4 * (want * (1 - want) / n) ** 0.5
    for hole in holes[border][:200, 0]:
        rows, cols = torch.where(hole == 0)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 0.4 * 20 - 1 <= h <= 0.8 * 20 + 1 and 0.4 * 30 - 1 <= w <= 0.8 * 30 + 1
        assert abs(int(rows.min()) - (20 - int(rows.max()) - 1)) <= 1  # centred
        assert int((hole == 0).sum()) == int(h * w)  # one kept box


def test_the_denoiser_fine_tunes_a_pipeline_and_the_inpainter_uses_it(denoiser_run, pipeline, one_thread):
    meta, state = read_trained(denoiser_run)
    gen = meta["generator"]
    assert gen["prediction_type"] == "v_prediction" and gen["pretrained"] == pipeline and gen["vae"] is None
    log = pd.read_csv(denoiser_run / "metrics.csv")
    assert {"train/first", "train/second"} <= set(log.columns)
    assert any(c.startswith("train/second_t") for c in log.columns)  # the second step's loss per t' bucket
    model = load_inpainter("seamless", checkpoint=str(denoiser_run), steps=3, device="cpu")
    assert model.backend.text is not None and model.backend.requirements.size_multiple == 2 * 2
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 32, 32, generator=g)
    hole = torch.zeros(2, 1, 32, 32)
    hole[0, :, 5:20, 8:22] = 1
    hole[1, :, 12:30, 2:14] = 1
    out = model(images, hole, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out * (1 - hole), images * (1 - hole))
    alone = model(images[1:], hole[1:], generator=[model_generators(2)[1]])
    assert_close(out[1:], alone, DEEP_RTOL, "a sample alone equals it in a batch")


def model_generators(n):
    from inpaintlab.inpainters.base import per_sample_generators

    return per_sample_generators(torch.Generator().manual_seed(1), n)


def test_a_wrong_checkpoint_is_one_line(denoiser_run, tmp_path):
    with pytest.raises(InpaintlabError, match="needs --option checkpoint"):
        load_inpainter("seamless")
    with pytest.raises(InpaintlabError, match="no such file"):
        load_inpainter("seamless", checkpoint=str(tmp_path / "none"))
    with pytest.raises(InpaintlabError, match="vae=original needs|no such file"):
        load_inpainter("seamless", checkpoint=str(denoiser_run), vae=str(tmp_path / "none"))
    record = json.loads((denoiser_run / "config.json").read_text())
    assert record["config"]["method"] == "seamless-denoiser"


TINY_VAE = {"width": "8", "perceptual": "none", "disc_start": "1", "base_lr": "1e-4"}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    TrainRun(config("seamless-vae", steps=3), TINY_VAE, out, log=quiet).run()
    return out


def test_the_vae_trains_on_eq6_with_its_discriminator_from_disc_start(vae_run):
    meta, state = read_trained(vae_run)
    assert meta["generator"]["objective"] == "blended"
    assert meta["generator"]["vae"]["block_out_channels"] == [8, 16, 16]
    log = pd.read_csv(vae_run / "metrics.csv")
    assert {"train/nll", "train/kl", "train/d_weight"} <= set(log.columns)
    disc = log.dropna(subset=["train/disc"])  # the discriminator steps: from disc_start (step 1) on
    assert len(disc) == 2 and torch.isfinite(torch.tensor(disc["train/disc"].to_numpy())).all()


def test_decoder_only_training_leaves_the_encoder_bit_identical(tmp_path):
    from inpaintlab.methods.seamless.models import build_vae, tiny_vae_config

    out = tmp_path / "run"
    torch.manual_seed(0)  # the loop seeds itself; the reference below is built the same way
    TrainRun(config("seamless-vae", steps=2), {**TINY_VAE, "train_encoder": "false"}, out, log=quiet).run()
    _, state = read_trained(out)
    torch.manual_seed(0)
    initial = build_vae(tiny_vae_config(8)).state_dict()
    changed = {k for k in state if not torch.equal(state[k], initial[k])}
    assert changed and all(k.startswith(("decoder.", "post_quant_conv.")) for k in changed), sorted(changed)[:5]


def test_a_denoiser_on_a_vae_run_records_it_and_the_inpainter_checks_it(vae_run, tmp_path, one_thread):
    out = tmp_path / "denoiser"
    TrainRun(config("seamless-denoiser"), {"vae": str(vae_run), "width": "8", "val_steps": "2"}, out,
             log=quiet).run()
    meta, _ = read_trained(out)
    assert meta["generator"]["vae"]["path"] == str(vae_run.resolve()) and meta["generator"]["pretrained"] is None
    model = load_inpainter("seamless", checkpoint=str(out), steps=2, device="cpu")
    assert model.backend.text is None and model.backend.requirements.size_multiple == 4 * 2
    images, hole = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    hole[..., 8:20, 10:24] = 1
    result = model(images, hole, generator=torch.Generator().manual_seed(0))
    assert torch.equal(result * (1 - hole), images * (1 - hole))
    # another VAE where the denoiser's was: refused, unless named explicitly
    TrainRun(config("seamless-vae", steps=4), TINY_VAE, vae_run, log=quiet).run()  # trains the recorded VAE on
    with pytest.raises(InpaintlabError, match="changed since the denoiser was trained"):
        load_inpainter("seamless", checkpoint=str(out), device="cpu")
    load_inpainter("seamless", checkpoint=str(out), vae=str(vae_run), device="cpu")
    with pytest.raises(InpaintlabError, match="vae=original needs"):
        load_inpainter("seamless", checkpoint=str(out), vae="original", device="cpu")


def test_the_denoiser_needs_latents_and_a_fitting_unet(tmp_path, pipeline):
    with pytest.raises(InpaintlabError, match="needs latents"):
        TrainRun(config("seamless-denoiser"), {}, tmp_path / "a", log=quiet).prepare()
    with pytest.raises(InpaintlabError, match="inpaint9 needs a UNet with 9 input channels"):
        TrainRun(config("seamless-denoiser"), {"pretrained": pipeline, "unet_kind": "inpaint9"}, tmp_path / "b",
                 log=quiet).prepare()


def test_a_vae_run_is_fine_tuned_from_where_it_stopped(vae_run, tmp_path):
    out = tmp_path / "branch"
    TrainRun(config("seamless-vae", steps=1), {**TINY_VAE, "pretrained": str(vae_run), "objective": "plain"}, out,
             log=quiet).run()
    _, start = read_trained(vae_run)
    _, after = read_trained(out)
    assert after.keys() == start.keys() and any(not torch.equal(after[k], start[k]) for k in start)
    # one step from the run's weights, not from a fresh initialisation: every tensor stays near its start
    assert max(float((after[k] - start[k]).abs().max()) for k in start) < 0.05


def test_a_denoiser_branches_from_another_run(denoiser_run, vae_run, pipeline, tmp_path):
    out = tmp_path / "branch"
    TrainRun(config("seamless-denoiser", steps=1), {"pretrained": pipeline, "init": str(denoiser_run),
                                                     "objective": "standard", "val_steps": "1"}, out,
             log=quiet).run()
    _, start = read_trained(denoiser_run)
    _, after = read_trained(out)
    assert max(float((after[k] - start[k]).abs().max()) for k in start) < 0.01  # one AdamW step of 1e-5 away
    for init, message in ((vae_run, "not a seamless-denoiser one"), (out / "nothing", "no such file")):
        with pytest.raises(InpaintlabError, match=message):
            TrainRun(config("seamless-denoiser"), {"pretrained": pipeline, "init": str(init)}, tmp_path / "c",
                     log=quiet).prepare()
