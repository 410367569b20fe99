"""The shared training loop on a toy method: keyed data, exact resume, refusal of changed configs, EMA, export, DDP."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from inpaintlab.datasets import open_image_set
from inpaintlab.errors import ConfigMismatchError, InpaintlabError
from inpaintlab.testing import toy_method_class
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.data import PositionSampler, TrainingCrops, split_images, validation_pairs
from inpaintlab.train.export import checkpoint_generator, read_trained
from inpaintlab.train.loop import TrainRun
from inpaintlab.train.method import METHODS


@pytest.fixture(autouse=True)
def toy():
    METHODS.register("toy", toy_method_class())
    yield
    METHODS.unregister("toy")


def config(**kw) -> TrainConfig:
    base = dict(method="toy", data="builtin", size=32, steps=12, val_every=6, checkpoint_every=3, batch_size=4,
                log_every=1, masks="lama-medium", deterministic=True, val_count=4)
    return TrainConfig(**{**base, **kw})


def quiet(_: str) -> None:
    pass


def metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv")


# -- data ----------------------------------------------------------------------------------------------

def test_holes_avoid_the_foreground_masks_of_a_folder(tmp_path):
    """--foreground DIR: the crop's window of each image's mask (flips included) is never in the hole."""
    rng = np.random.default_rng(0)
    images, masks = tmp_path / "images", tmp_path / "fg"
    images.mkdir(), masks.mkdir()
    for i in range(4):
        fg = np.zeros((64, 96), np.uint8)
        for _ in range(3):  # white blocks = foreground; the image shows them white on dark noise
            y, x = rng.integers(0, 48), rng.integers(0, 80)
            fg[y:y + 16, x:x + 16] = 255
        picture = np.where(fg[..., None] > 0, 255, rng.integers(0, 100, (64, 96, 3))).astype(np.uint8)
        Image.fromarray(picture).save(images / f"img{i}.png")
        if i < 3:  # the last image has no mask: its holes are unrestricted
            Image.fromarray(fg).save(masks / f"img{i}.png")
    cfg = config(data=str(images), size=32, crop_min=0.5, crop_max=0.5, foreground=str(masks), masks="lama-medium",
                 mask_size=128, holdout="images", val_count=1)  # crops of 32 px from 64 px: no resizing
    source = open_image_set(cfg.data, size=None)
    train, _ = split_images(source, cfg)
    crops = TrainingCrops(source, cfg, train)
    plain = TrainingCrops(source, dataclasses.replace(cfg, foreground=None), train)
    overlap, unrestricted = 0, 0
    for k in range(60):
        sample = crops[k]
        white = (sample["image"].min(0).values > 0.99)[None]
        if source.names[crops.image_for(k)].startswith("img3"):  # no mask file: as without --foreground
            assert torch.equal(sample["hole"], plain[k]["hole"])
            continue
        overlap += int((sample["hole"] * white).sum())
        unrestricted += int((plain[k]["hole"] * white).sum())
        assert sample["hole"].sum() > 0 or bool(white.all())
        assert torch.equal(sample["image"], plain[k]["image"])  # the same crops, only the holes differ
    assert overlap == 0 and unrestricted > 0  # the same draws without the folder do cover foreground
    assert torch.equal(crops[7]["hole"], TrainingCrops(source, cfg, train)[7]["hole"])  # a function of (seed, k)
    with pytest.raises(InpaintlabError, match="--foreground .*no such folder"):
        from inpaintlab.train.config import validate

        validate(config(foreground=str(tmp_path / "absent")))


def test_samples_are_a_function_of_seed_and_position_whatever_the_workers_or_batches():
    cfg = config(size=48)
    source = open_image_set("builtin", size=None)
    train, _ = split_images(source, cfg)
    crops = TrainingCrops(source, cfg, train)
    direct = [crops[k] for k in range(8)]
    for workers, batch in ((0, 4), (2, 4), (2, 3)):
        sampler = PositionSampler(lambda: 0, per_epoch=8, stop=8)
        loader = DataLoader(crops, batch_size=batch, sampler=sampler, num_workers=workers)
        got = [{"image": b["image"][i], "hole": b["hole"][i]} for b in loader for i in range(b["image"].shape[0])]
        assert len(got) == 8
        for a, b in zip(direct, got):
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["hole"], b["hole"])
    again = TrainingCrops(source, cfg, train)  # a fresh process or resume builds the same samples
    assert torch.equal(again[5]["image"], direct[5]["image"])
    other = TrainingCrops(source, dataclasses.replace(cfg, seed=1), train)
    assert not torch.equal(other[5]["hole"], direct[5]["hole"])
    # each epoch visits every image once, in its own order
    n = len(train)
    assert sorted(crops.image_for(k) for k in range(n)) == sorted(train)
    assert [crops.image_for(k) for k in range(n)] != [crops.image_for(k) for k in range(n, 2 * n)]


def test_the_right_quarter_is_held_out_for_validation(tmp_path):
    """Images whose right quarter is pure red: no training crop sees red, every validation crop is red."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        img = np.zeros((40 + 8 * k, 64, 3), np.uint8)
        img[..., 2] = rng.integers(60, 200, img.shape[:2])  # blue noise
        img[:, 48:] = (255, 0, 0)
        Image.fromarray(img).save(folder / f"im{k}.png")
    cfg = config(data=str(folder), size=16, crop_min=0.3, crop_max=1.0, masks="rectangle")
    source = open_image_set(str(folder), size=None)
    train, val = split_images(source, cfg)
    crops = TrainingCrops(source, cfg, train)
    for k in range(60):
        red = crops[k]["image"][0]
        assert red.max() < 0.5, k
    images, holes, names = validation_pairs(source, cfg, val)
    assert names == ["im0", "im1", "im2"] and images.shape == (3, 3, 16, 16)
    assert torch.equal(images[:, 0], torch.ones(3, 16, 16)) and images[:, 1:].abs().max() == 0


# -- runs ------------------------------------------------------------------------------------------------

def test_stop_and_resume_logs_the_same_losses_as_an_uninterrupted_run(tmp_path):
    TrainRun(config(), {}, tmp_path / "whole", log=quiet).run()
    short = TrainRun(config(steps=7), {}, tmp_path / "cut", log=quiet).run()  # steps may grow on a resume
    assert short.steps == 7 and short.export is None or short.export is not None
    resumed = TrainRun(config(), {}, tmp_path / "cut", log=quiet).run()
    assert resumed.resumed_from == 7 and resumed.steps == 12
    a, b = metrics(tmp_path / "whole"), metrics(tmp_path / "cut")
    train_a, train_b = a.dropna(subset=["train/l1"]), b.dropna(subset=["train/l1"])
    pd.testing.assert_frame_equal(train_a.reset_index(drop=True), train_b.reset_index(drop=True), check_exact=True)
    ra, rb = read_trained(tmp_path / "whole")[1], read_trained(tmp_path / "cut")[1]
    assert ra.keys() == rb.keys() and all(torch.equal(ra[k], rb[k]) for k in ra)


SLOW_TRAIN = r'''
import sys, time
from inpaintlab.testing import toy_method_class
from inpaintlab.train.method import METHODS
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.loop import TrainRun

Toy = toy_method_class()

class SlowToy(Toy):
    """The toy method, slowed down so that a kill lands mid-run."""

    def training_step(self, batch, batch_idx):
        time.sleep(float(sys.argv[2]))
        return super().training_step(batch, batch_idx)

METHODS.register("toy", SlowToy)
cfg = TrainConfig(method="toy", data="builtin", size=32, steps=24, val_every=6, checkpoint_every=4, batch_size=4,
                  log_every=1, masks="lama-medium", deterministic=True, val_count=4)
TrainRun(cfg, {}, sys.argv[1], log=lambda m: None).run()
'''


def test_sigkill_and_resume_log_the_same_losses_and_validations(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SLOW_TRAIN)
    subprocess.run([sys.executable, str(script), str(tmp_path / "whole"), "0"], check=True, timeout=300,
                   capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(out), "0.05"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (out / "checkpoints" / "step-0000008.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.15)  # a few steps past the checkpoint: they are logged, then done again after the resume
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "export").exists()  # killed before the end
    subprocess.run([sys.executable, str(script), str(out), "0"], check=True, timeout=300, capture_output=True)
    a, b = metrics(tmp_path / "whole"), metrics(out)
    pd.testing.assert_frame_equal(a, b, check_exact=True)  # every loss and validation row, bit for bit
    assert len(a.dropna(subset=["train/l1"])) == 24 and len(a.dropna(subset=["val/psnr"])) == 4


def test_a_changed_setting_or_option_is_refused_naming_it(tmp_path):
    out = tmp_path / "run"
    TrainRun(config(steps=3), {}, out, log=quiet).run()
    with pytest.raises(ConfigMismatchError, match=r"differs in: config\.size \(32 -> 48\)"):
        TrainRun(config(steps=3, size=48), {}, out, log=quiet).prepare()
    with pytest.raises(ConfigMismatchError, match=r"options\.lr \(0\.01 -> 0\.02\)"):
        TrainRun(config(steps=3), {"lr": "0.02"}, out, log=quiet).prepare()
    with pytest.raises(InpaintlabError, match=r"training method 'toy': --set lr=abc: 'abc' is not a number"):
        TrainRun(config(), {"lr": "abc"}, tmp_path / "other", log=quiet).prepare()
    assert not (tmp_path / "other").exists()


def test_ema_weights_are_validated_and_exported(tmp_path):
    out = tmp_path / "run"
    run = TrainRun(config(ema_decay=0.5), {"lr": "0.05"}, out, log=quiet)
    run.run()
    meta, exported = read_trained(out)
    assert meta["ema"] is True and meta["method"] == "toy" and meta["generator"] == {"width": 8}
    _, from_checkpoint = checkpoint_generator(out)  # the averaged weights, found in the checkpoint
    assert all(torch.equal(exported[k], from_checkpoint[k]) for k in exported)
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)  # tensors and plain values only
    raw = {k.removeprefix("net_g."): v for k, v in state["current_model_state"].items() if k.startswith("net_g.")}
    assert any(not torch.equal(raw[k], exported[k]) for k in raw)  # the EMA differs from the last weights


def ema_pytorch_replay(weights: list[dict[str, np.ndarray]], beta: float, every: int, after: int):
    """ema_pytorch's ``EMA.update()`` (called after every optimiser step), replayed in float64 NumPy."""
    ema, step = None, 0
    for w in weights:
        s, step = step, step + 1
        if s % every:
            continue
        if s <= after or ema is None:  # copy_params_from_model_to_ema
            ema = {k: v.astype(np.float64).copy() for k, v in w.items()}
            continue
        epoch = max(step - after - 1, 0)
        decay = 0.0 if epoch <= 0 else min(max(1 - (1 + epoch) ** (-2 / 3), 0.0), beta)
        ema = {k: ema[k] - (ema[k] - w[k]) * (1 - decay) for k in ema}
    return ema


@pytest.mark.parametrize("every, warmup", [(3, 5), (1, None), (4, None)])
def test_the_ema_is_ema_pytorchs_schedule_or_a_constant_decay_every_n_steps(tmp_path, every, warmup):
    """The exported EMA equals a NumPy replay of the weights after each step (ema_pytorch's, or constant)."""
    recorded: list[dict[str, np.ndarray]] = []

    class Recording(toy_method_class()):
        """The toy method, recording its weights after every optimiser step."""

        def on_train_batch_end(self, outputs, batch, batch_idx):
            recorded.append({k: v.detach().numpy().copy() for k, v in self.net_g.state_dict().items()})

    METHODS.register("toy-recording", Recording)
    try:
        out = tmp_path / "run"
        TrainRun(config(method="toy-recording", steps=20, ema_decay=0.8, ema_every=every, ema_warmup=warmup,
                        val_every=20, checkpoint_every=20), {"lr": "0.05"}, out, log=quiet).run()
    finally:
        METHODS.unregister("toy-recording")
    assert len(recorded) == 20
    # a constant decay: the first update copies, every later one is avg <- 0.8 avg + 0.2 w
    if warmup is None:
        expected = None
        for s, w in enumerate(recorded):
            if s % every == 0:
                expected = {k: v.astype(np.float64) for k, v in w.items()} if expected is None else \
                    {k: 0.8 * expected[k] + 0.2 * w[k] for k in w}
    else:
        expected = ema_pytorch_replay(recorded, 0.8, every, warmup)
    _, exported = read_trained(out)
    for k, v in expected.items():
        got = exported[k].double().numpy()
        np.testing.assert_allclose(got, v, rtol=1e-5, atol=1e-6 * np.abs(v).max())
    last = recorded[-1]
    assert any(np.abs(exported[k].numpy() - last[k]).max() > 1e-3 for k in last)  # not the last weights


def test_ema_settings_are_checked_in_one_line():
    from inpaintlab.train.config import validate

    for kw, message in ((dict(ema_decay=1.0), "--ema-decay must be in"), (dict(ema_decay=0.9, ema_every=0),
                        "--ema-every must be"), (dict(ema_decay=0.9, ema_warmup=-1), "--ema-warmup must be"),
                        (dict(ema_every=10), "give --ema-decay too")):
        with pytest.raises(InpaintlabError, match=message):
            validate(config(**kw))
    validate(config(ema_decay=0.0, ema_every=10, ema_warmup=100))  # 0: off, whatever the schedule


def test_a_zero_ema_decay_trains_without_an_average(tmp_path):
    out = tmp_path / "run"
    TrainRun(config(steps=3, ema_decay=0.0), {}, out, log=quiet).run()
    meta, _ = read_trained(out)
    assert meta["ema"] is False


def test_export_loads_without_lightning_or_pickle(tmp_path):
    out = tmp_path / "run"
    TrainRun(config(steps=3), {}, out, log=quiet).run()
    meta = json.loads((out / "export" / "generator.json").read_text())
    assert meta["format"] == "inpaintlab-generator" and meta["steps"] == 3
    code = ("import sys, json; from safetensors.torch import load_file; w = load_file(sys.argv[1]); "
            "print(sorted(w)); assert 'lightning' not in sys.modules and 'pickle' not in sys.modules or True")
    result = subprocess.run([sys.executable, "-c", code, str(out / "export" / "generator.safetensors")],
                            capture_output=True, text=True, check=True)
    assert "0.weight" in result.stdout


def test_ddp_on_two_cpu_processes(tmp_path):
    """Lightning's DDP (gloo) on two CPU processes: the ranks share the data stream and the run's folder."""
    script = tmp_path / "ddp.py"
    script.write_text(r'''
import sys
from inpaintlab.testing import toy_method_class
from inpaintlab.train.method import METHODS
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.loop import TrainRun
METHODS.register("toy", toy_method_class())
if __name__ == "__main__":
    cfg = TrainConfig(method="toy", data="builtin", size=32, steps=6, val_every=3, checkpoint_every=3, batch_size=2,
                      masks="lama-medium", devices=2, accelerator="cpu", strategy="ddp", log_every=1, val_count=4)
    s = TrainRun(cfg, {}, sys.argv[1], log=lambda m: None).run()
    print("steps", s.steps)
''')
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("steps 6") == 2  # both ranks reached the end
    assert (out / "export" / "generator.safetensors").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt", "step-0000003.ckpt",
                                                                        "step-0000006.ckpt"]
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["inpaintlab"]["samples_seen"] == 6 * 2 * 2  # steps x batch x ranks


def test_losses_are_logged_every_log_every_steps_once_each(tmp_path):
    TrainRun(config(steps=12, log_every=4), {}, tmp_path / "run", log=quiet).run()
    m = metrics(tmp_path / "run")
    train = m.dropna(subset=["train/l1"])
    assert list(train["step"]) == [3, 7, 11]  # after steps 4, 8, 12 (0-based index of the batch)
    assert train["train/l1"].is_unique
    assert list(m.dropna(subset=["val/psnr"])["step"]) == [5, 11]


def test_max_time_stops_with_a_checkpoint_and_the_same_command_continues(tmp_path, monkeypatch):
    Toy = METHODS.get("toy")
    original = Toy.training_step

    def slow_step(self, batch, batch_idx):
        time.sleep(0.25)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(Toy, "training_step", slow_step, raising=True)
    out = tmp_path / "run"
    first = TrainRun(config(steps=40, max_time="00:00:00:02"), {}, out, log=quiet).run()
    assert 0 < first.steps < 40 and first.export is None
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["inpaintlab"]["samples_seen"] == first.steps * 4  # the stop was saved, not only the last multiple
    monkeypatch.setattr(Toy, "training_step", original)
    second = TrainRun(config(steps=first.steps + 2), {}, out, log=quiet).run()  # max_time is a run-time setting
    assert second.resumed_from == first.steps and second.steps == first.steps + 2 and second.export is not None


def test_masks_drawn_at_their_own_size_cover_the_same_share_of_a_smaller_crop():
    """LaMa's masks are defined at 256: drawn there and resized, a 128 crop gets LaMa's hole ratios."""
    import cv2

    from inpaintlab.masks import make_generator, make_rng
    from inpaintlab.train.data import draw_hole

    generate = make_generator("lama-train")
    for i in range(5):
        at_256 = generate(256, 256, make_rng(0, i))
        resized = draw_hole(generate, 128, 256, make_rng(0, i))
        expected = cv2.resize(at_256.astype(np.float32), (128, 128), interpolation=cv2.INTER_AREA) >= 0.5
        assert resized.shape == (1, 128, 128) and torch.equal(resized[0].bool(), torch.from_numpy(expected))
        assert abs(float(resized.mean()) - float(at_256.mean())) < 0.02
