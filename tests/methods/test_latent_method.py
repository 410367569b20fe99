"""Latent inpainting on the shared loop: frozen parts stay frozen, the latent presets never decode, the inpainter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.methods.latent_inpainting.method import (PRESETS, LatentInpaintingOptions, loss_weights,
                                                         reconstruction_mse)
from inpaintlab.methods.latent_inpainting.network import LatentInpaintingNet, LatentNetConfig, config_to_dict
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.export import export_generator, read_trained
from inpaintlab.train.loop import TrainRun

from ..conftest import DEEP_RTOL, assert_close
from .test_latent_network import randomise_batchnorm


def quiet(_: str) -> None:
    pass


def config(method="latent-inpainting", **kw) -> TrainConfig:
    base = dict(method=method, data="builtin", size=32, steps=3, val_every=3, checkpoint_every=3, batch_size=2,
                log_every=1, masks="lama-medium", deterministic=True, val_count=2)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory) -> Path:
    """An exported ngf-4 autoencoder with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(11)
    cfg = LatentNetConfig(ngf=4, n_blocks=0, reference=False)
    net = LatentInpaintingNet(cfg)
    randomise_batchnorm(net, 11)
    folder = tmp_path_factory.mktemp("ae") / "export"
    return export_generator(net, {"method": "latent-autoencoder", "generator": config_to_dict(cfg), "steps": 0,
                                  "ema": False, "options": {}}, folder)


def options(autoencoder, **kw) -> dict:
    return {"autoencoder": str(autoencoder), "n_blocks": 1, **kw}


def trained(tmp_path, autoencoder, preset, **kw):
    run = TrainRun(config(**kw.pop("train", {})), options(autoencoder, preset=preset, **kw), tmp_path / f"p{preset}",
                   log=quiet)
    run.prepare()
    before = {k: v.clone() for k, v in run.method.net_g.state_dict().items()}
    return run, before


FROZEN = {1: ("reference",), 2: ("reference", "encoder", "decoder"), 3: ("reference", "encoder", "decoder"),
          4: ("reference", "encoder", "decoder")}


@pytest.mark.parametrize("preset", [1, 2, 3, 4])
def test_frozen_parameters_and_batchnorm_statistics_stay_bit_identical(tmp_path, autoencoder, preset):
    run, before = trained(tmp_path, autoencoder, preset)
    run.run()
    ckpt = torch.load(tmp_path / f"p{preset}" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    after = {k.removeprefix("net_g."): v for k, v in ckpt.items() if k.startswith("net_g.")}
    assert after.keys() == before.keys()
    stem = "encoder.1.ffc.convl2l.weight"
    for key, value in before.items():
        part = key.split(".")[0]
        frozen = part in FROZEN[preset] and not (preset == 3 and key == stem)
        if frozen:  # parameters *and* buffers (running mean / var / batches tracked)
            assert torch.equal(after[key], value), f"preset {preset}: frozen {key} changed"
    changed = {k.split(".")[0] for k, v in before.items() if v.is_floating_point() and not torch.equal(after[k], v)}
    expected = {1: {"encoder", "refiner", "decoder"}, 2: {"refiner", "mask_encoder", "zero_convs"},
                3: {"encoder", "refiner"}, 4: {"refiner", "mask_encoder", "zero_convs"}}[preset]
    assert changed == expected
    if preset == 3:  # only the stem conv of the encoder trains; its mask channel starts at zero and learns
        assert not torch.equal(after[stem][:, 3:], before[stem][:, 3:])
    record = json.loads((tmp_path / f"p{preset}" / "config.json").read_text())
    assert {k.split(".")[0] for k in record["trainable"]} == {"refiner"} | (
        {"mask_encoder", "zero_convs"} if PRESETS[preset].control else {"encoder"} if preset in (1, 3) else set()) \
        | ({"decoder"} if preset == 1 else set())


def decoder_calls_in_training(tmp_path, autoencoder, preset, **kw) -> tuple[int, int]:
    """(decoder calls during training steps, during validation) of a 3-step run."""
    run, _ = trained(tmp_path, autoencoder, preset, **kw)
    calls = {"train": 0, "validate": 0}

    def count(module, inputs, output):
        calls[run.method.trainer.state.stage.value] += 1

    run.method.net_g.decoder.register_forward_hook(count)
    run.run()
    return calls["train"], calls["validate"]


@pytest.mark.parametrize("preset", [3, 4])
def test_the_latent_presets_never_run_the_decoder_in_training(tmp_path, autoencoder, preset):
    train_calls, val_calls = decoder_calls_in_training(tmp_path, autoencoder, preset)
    assert train_calls == 0 and val_calls == 1  # validation decodes (one batch of 2 pairs)
    m = pd.read_csv(tmp_path / f"p{preset}" / "metrics.csv")
    assert m["train/latent_l1"].notna().sum() == 3 and "train/l1" not in m.columns


def test_the_pixel_presets_and_the_reference_objective_decode_every_step(tmp_path, autoencoder):
    assert decoder_calls_in_training(tmp_path / "a", autoencoder, 1)[0] == 3
    assert decoder_calls_in_training(tmp_path / "b", autoencoder, 4, objective="reference")[0] == 3
    m = pd.read_csv(tmp_path / "b" / "p4" / "metrics.csv").dropna(subset=["train/l1"])
    # the code's objective: pixel L1 (x10 known and hole) plus 1e-4 x latent L1
    assert np.allclose(m["train/loss_g"], m["train/l1"] + m["train/latent_l1"], rtol=1e-6)
    assert (m["train/latent_l1"] < 1e-2 * m["train/l1"]).all()


def test_the_latent_loss_target_is_the_frozen_autoencoders_latent_of_the_ground_truth(tmp_path, autoencoder):
    run, _ = trained(tmp_path, autoencoder, 4)
    method, net = run.method, run.method.net_g
    method.train()  # what Lightning does: the frozen parts must stay in eval mode
    assert not net.encoder.training and not net.decoder.training and not net.reference.training
    assert net.refiner.training and net.mask_encoder.training
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    hole = torch.zeros(2, 1, 32, 32)
    hole[:, :, 8:20, 8:24] = 1
    _, losses = method.generator_losses(images, hole)
    ae_meta, ae_state = read_trained(autoencoder)
    ae = LatentInpaintingNet(LatentNetConfig(ngf=4, n_blocks=0, reference=False))
    ae.load_state_dict(ae_state)
    ae.eval()
    refined = net.refine(net.encode(net.encoder_input(images, hole), hole))
    target = ae.encode(images)
    expected = np.mean(np.abs(torch.cat(refined, 1).detach().numpy() - torch.cat(target, 1).detach().numpy()))
    assert_close(losses["train/latent_l1"], expected, DEEP_RTOL, "latent L1 against the autoencoder")


def test_loss_weights_per_preset_and_objective():
    def w(**kw):
        return loss_weights(LatentInpaintingOptions(autoencoder="x", **kw))

    assert (w(preset=1).latent, w(preset=1).l1_known, w(preset=1).l1_missing, w(preset=1).decodes) == (0, 1, 1, True)
    assert (w(preset=4).latent, w(preset=4).l1_known, w(preset=4).decodes) == (1, 0, False)
    ref = w(preset=3, objective="reference")
    assert (ref.latent, ref.l1_known, ref.l1_missing, ref.decodes) == (1e-4, 10, 10, True)
    full = w(preset=4, objective="full")
    assert (full.latent, full.l1_known, full.l1_missing, full.adversarial) == (1e-3, 10, 0, True)
    assert w(preset=4, latent_weight=0.5, l1_missing=2.0).l1_missing == 2.0


def test_the_full_objective_trains_lamas_two_players_with_the_latent_term(tmp_path, autoencoder):
    run, _ = trained(tmp_path, autoencoder, 4, objective="full", perceptual_term="none")
    d0 = {k: v.clone() for k, v in run.method.net_d.state_dict().items()}
    run.run()
    assert any(not torch.equal(d0[k], v) for k, v in run.method.net_d.state_dict().items() if v.is_floating_point())
    m = pd.read_csv(tmp_path / "p4" / "metrics.csv").dropna(subset=["train/loss_g"])
    parts = m["train/l1"] + m["train/latent_l1"] + m["train/adv_g"] + m["train/fm"]
    assert np.allclose(m["train/loss_g"], parts, rtol=1e-6) and m["train/loss_d"].notna().all()


def test_bad_settings_are_one_line_before_any_folder(tmp_path, autoencoder):
    def prepare(opts, out="x"):
        TrainRun(config(), opts, tmp_path / out, log=quiet).prepare()

    with pytest.raises(InpaintlabError, match="needs the pre-trained autoencoder"):
        prepare({"preset": 2})
    with pytest.raises(InpaintlabError, match="no such file"):
        prepare({"preset": 2, "autoencoder": str(tmp_path / "nowhere")})
    with pytest.raises(InpaintlabError, match="stem=mask_conv applies to presets 1 and 3"):
        prepare(options(autoencoder, preset=4, stem="mask_conv"))
    with pytest.raises(InpaintlabError, match="preset"):
        prepare(options(autoencoder, preset=5))
    assert not (tmp_path / "x").exists()
    # an inpainting run is not an autoencoder
    TrainRun(config(steps=1, val_every=1, checkpoint_every=1), options(autoencoder, preset=2), tmp_path / "p2",
             log=quiet).run()
    with pytest.raises(InpaintlabError, match="not a latent-autoencoder one"):
        prepare({"preset": 2, "autoencoder": str(tmp_path / "p2")}, out="y")


def test_resuming_with_another_autoencoder_at_the_same_path_is_refused(tmp_path, autoencoder):
    import shutil

    ae = shutil.copytree(autoencoder, tmp_path / "ae")
    TrainRun(config(steps=1, val_every=1, checkpoint_every=1), options(ae, preset=4), tmp_path / "run",
             log=quiet).run()
    meta, state = read_trained(ae)
    net = LatentInpaintingNet(LatentNetConfig(ngf=4, n_blocks=0, reference=False))
    net.load_state_dict({k: v + 1 if v.is_floating_point() else v for k, v in state.items()})
    export_generator(net, meta, ae)  # retrained in place
    with pytest.raises(InpaintlabError, match=r"autoencoder\.sha256"):
        TrainRun(config(steps=2, val_every=1, checkpoint_every=1), options(ae, preset=4), tmp_path / "run",
                 log=quiet).run()


def test_the_inpainter_loads_a_run_its_export_and_a_step_checkpoint(tmp_path, autoencoder):
    run = TrainRun(config(steps=2, val_every=1, checkpoint_every=1), options(autoencoder, preset=3), tmp_path / "run",
                   log=quiet)
    run.run()
    net = run.method.net_g.eval()
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 4:12, 4:20] = 1
    with torch.no_grad():
        want = net(images, hole)
    for where in (tmp_path / "run", tmp_path / "run" / "export"):
        model = load_inpainter("latent-lama", checkpoint=str(where), device="cpu")
        got = model.backend.inpaint(images, hole, generator=None)
        assert torch.equal(got, want)
    first = load_inpainter("latent-lama", checkpoint=str(tmp_path / "run" / "checkpoints" / "step-0000001.ckpt"),
                           device="cpu")
    assert not torch.equal(first.backend.inpaint(images, hole, generator=None), want)
    assert "preset 3" in first.backend.source
    with pytest.raises(InpaintlabError, match="not a latent-inpainting one"):
        load_inpainter("latent-lama", checkpoint=str(autoencoder), device="cpu")
    with pytest.raises(InpaintlabError, match="needs --option checkpoint"):
        load_inpainter("latent-lama")


def test_the_autoencoder_trains_on_full_images_with_the_codes_mse(tmp_path):
    run = TrainRun(config("latent-autoencoder", steps=4, val_every=2, checkpoint_every=2), {"ngf": 4},
                   tmp_path / "ae", log=quiet)
    run.run()
    m = pd.read_csv(tmp_path / "ae" / "metrics.csv")
    assert m["train/mse"].notna().sum() == 4 and m["val/mse"].notna().sum() == 2 and m["val/psnr"].notna().sum() == 2
    meta, state = read_trained(tmp_path / "ae")
    assert meta["method"] == "latent-autoencoder" and meta["generator"]["n_blocks"] == 0
    assert not any(k.startswith(("refiner", "reference", "mask")) for k in state)
    a = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    b = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    assert_close(reconstruction_mse(a, b), ((a.numpy() - b.numpy()) ** 2).sum(axis=(1, 2, 3)).mean(), 1e-6, "MSE")
    # the plateau scheduler watches the validation loss
    sched = run.method.trainer.lr_scheduler_configs[0]
    assert sched.monitor == "val/mse" and sched.interval == "epoch"


def test_a_user_trains_the_autoencoder_and_a_preset_visualises_and_inpaints_from_the_command_line(
        monkeypatch, capsys, tmp_path, image_dir):
    from PIL import Image

    from ..test_cli import run_cli

    common = ["--data", str(image_dir), "--size", "32", "--batch-size", "2", "--val-count", "2", "--val-every", "2",
              "--checkpoint-every", "2", "--masks", "lama-medium"]
    code, out, err = run_cli(monkeypatch, capsys, "train", "latent-autoencoder", *common, "--steps", "2",
                             "--ngf", "4", "--out", str(tmp_path / "ae"))
    assert code == 0, err
    assert f"--autoencoder {tmp_path / 'ae'}" in out
    code, out, err = run_cli(monkeypatch, capsys, "train", "latent-inpainting", *common, "--steps", "2",
                             "--preset", "4", "--autoencoder", str(tmp_path / "ae"), "--n-blocks", "1",
                             "--out", str(tmp_path / "p4"))
    assert code == 0, err
    assert "--model latent-lama" in out  # the hint names the inpainter that loads it
    record = json.loads((tmp_path / "p4" / "config.json").read_text())
    assert record["config"]["options"]["preset"] == 4 and record["generator"]["ngf"] == 4
    code, out, err = run_cli(monkeypatch, capsys, "latent", "visualize", str(tmp_path / "p4"), "--images",
                             str(image_dir), "--size", "32", "--out", str(tmp_path / "vis"))
    assert code == 0, err
    assert "D[E(gt) - E(masked)]" in out and len(list((tmp_path / "vis").glob("*.png"))) == 3
    row = np.asarray(Image.open(tmp_path / "vis" / "a.png"))
    # image, masked, D[E(gt) - E(masked)], D(0), D[R(z) - z], D[E(gt) - R(z)], output
    assert row.shape == (32, 7 * 32, 3)
    hole = np.zeros((64, 64), np.uint8)
    hole[20:40, 10:30] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    code, out, err = run_cli(monkeypatch, capsys, "inpaint", str(image_dir / "a.png"), str(tmp_path / "hole.png"),
                             "--model", "latent-lama", "--option", f"checkpoint={tmp_path / 'p4'}", "--output",
                             str(tmp_path / "out.png"))
    assert code == 0, err
    result, original = np.asarray(Image.open(tmp_path / "out.png")), np.asarray(Image.open(image_dir / "a.png"))
    assert np.array_equal(result[hole == 0], original[hole == 0])  # the kept pixels are the input's
    code, out, err = run_cli(monkeypatch, capsys, "latent", "visualize", str(image_dir), "--out", str(tmp_path / "v2"))
    assert code != 0 and "Traceback" not in err


def test_a_stopped_and_resumed_preset_logs_the_losses_of_an_uninterrupted_one(tmp_path, autoencoder):
    opts = options(autoencoder, preset=4)
    TrainRun(config(steps=4, val_every=2, checkpoint_every=2), opts, tmp_path / "whole", log=quiet).run()
    TrainRun(config(steps=2, val_every=2, checkpoint_every=2), opts, tmp_path / "parts", log=quiet).run()
    TrainRun(config(steps=4, val_every=2, checkpoint_every=2), opts, tmp_path / "parts", log=quiet).run()
    whole, parts = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("whole", "parts"))
    assert list(parts["step"]) == list(whole["step"])
    assert np.array_equal(whole["train/latent_l1"].to_numpy(), parts["train/latent_l1"].to_numpy(), equal_nan=True)


def test_ema_averages_the_trained_parts_and_leaves_the_frozen_ones(tmp_path, autoencoder):
    run = TrainRun(config(steps=3, ema_decay=0.5), options(autoencoder, preset=2), tmp_path / "run", log=quiet)
    run.run()
    meta, state = read_trained(tmp_path / "run")
    assert meta["ema"] is True
    _, ae_state = read_trained(autoencoder)
    assert all(torch.equal(state[f"decoder.{k.split('.', 1)[1]}"], v) for k, v in ae_state.items()
               if k.startswith("decoder."))


def test_ddp_on_two_cpu_processes_keeps_the_autoencoder_frozen(tmp_path, autoencoder):
    """Lightning's DDP (gloo), preset 4: both ranks finish; the frozen parts are the autoencoder's, bit for bit."""
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    script.write_text(r'''
import sys
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.loop import TrainRun
if __name__ == "__main__":
    cfg = TrainConfig(method="latent-inpainting", data="builtin", size=32, steps=3, val_every=3, checkpoint_every=3,
                      batch_size=2, masks="lama-medium", devices=2, accelerator="cpu", strategy="ddp", val_count=2)
    s = TrainRun(cfg, {"preset": 4, "autoencoder": sys.argv[2], "n_blocks": 1}, sys.argv[1], log=lambda m: None).run()
    print("steps", s.steps)
''')
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, str(script), str(out), str(autoencoder)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("steps 3") == 2
    _, state = read_trained(out)
    _, ae_state = read_trained(autoencoder)
    for k, v in ae_state.items():
        part, rest = k.split(".", 1)
        assert torch.equal(state[f"{part}.{rest}"], v), k
        if part == "encoder":
            assert torch.equal(state[f"reference.{rest}"], v), k
