"""ASUKA on the shared loop: ``asuka-mae``, ``asuka-align``, ``asuka-decoder`` and the composed ``asuka`` inpainter."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
import torch

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.inpainters.base import per_sample_generators
from inpaintlab.methods.asuka.method import (MAEPrior, build_prior, sample_generators, to_mae_size, warmup_cosine)
from inpaintlab.testing import save_tiny_pipeline
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.export import read_trained
from inpaintlab.train.loop import TrainRun

from ..conftest import DEEP_RTOL, assert_close

TINY_MAE = {"patch_size": "4"}  # the tiny preset at 32 px with 64 tokens


def quiet(_: str) -> None:
    pass


def config(method, **kw) -> TrainConfig:
    base = dict(method=method, data="builtin", size=32, steps=2, val_every=2, checkpoint_every=2, batch_size=2,
                log_every=1, masks="misato", mask_params={"hi": 0.5}, mask_size=256, deterministic=True, val_count=2)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A tiny SD-inpainting pipeline (9-channel UNet, VAE of factor 2, CLIP text encoder) saved as SD-1.5's is."""
    return str(save_tiny_pipeline(tmp_path_factory.mktemp("sd-inpaint"), in_channels=9))


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mae") / "run"
    TrainRun(config("asuka-mae", steps=3, batch_size=4), TINY_MAE, out, log=quiet).run()
    return out


@pytest.fixture(scope="module")
def align_run(pipeline, mae_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("align") / "run"
    TrainRun(config("asuka-align"), {"base": pipeline, "mae": str(mae_run), "val_steps": "2", "p_warmup": "1"}, out,
             log=quiet).run()
    return out


def images_and_holes(n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    hole = torch.zeros(n, 1, size, size)
    for i in range(n):
        top, left = 2 + 4 * i, 6 + 2 * i
        hole[i, :, top:top + 12, left:left + 14] = 1
    return images, hole


# ---- helpers ---------------------------------------------------------------------------------------

def test_sample_generators_depend_on_the_position_only():
    a = sample_generators(0, 10, 3, 12)
    b = sample_generators(0, 11, 1, 12)
    draws = [torch.rand(4, generator=g) for g in a]
    assert torch.equal(draws[1], torch.rand(4, generator=b[0]))  # sample 11 alone draws what it draws in a batch
    assert not torch.equal(draws[0], draws[1])
    assert not torch.equal(torch.rand(4, generator=sample_generators(0, 10, 1, 13)[0]), draws[0])  # tags differ


def test_warmup_cosine_against_its_closed_form():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    for step in (10, 40, 77, 100):
        assert warmup_cosine(step, 100, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * (step - 10) / 90)))
    assert warmup_cosine(0, 50) == pytest.approx(1.0) and warmup_cosine(50, 50) == pytest.approx(0.0, abs=1e-12)


def test_resizing_for_the_mae_never_leaks_hole_pixels():
    """Hole-content invariance through the resize: any hole pixel marks its MAE pixel as hole."""
    from inpaintlab.methods.asuka.mae import build_mae, mae_config

    prior = MAEPrior(build_mae(mae_config("tiny", patch_size=4), generator=torch.Generator().manual_seed(0)))
    images, _ = images_and_holes(2, 64)
    hole = torch.zeros(2, 1, 64, 64)
    hole[:, :, 9:30, 13:41] = 1  # odd edges: half-covered pixels of the 32 px grid
    other = torch.where(hole > 0, torch.rand_like(images), images)
    small, small_hole = to_mae_size(images, hole, 32)
    assert torch.equal(small_hole, (torch.nn.functional.max_pool2d(hole, 2) > 0).float())
    with torch.no_grad():
        assert torch.equal(prior.features(images, hole), prior.features(other, hole))
        assert prior.features(images, hole).shape == (2, 64, 16)


# ---- asuka-mae -------------------------------------------------------------------------------------

def test_the_mae_trains_and_its_export_rebuilds_the_prior(mae_run):
    meta, state = read_trained(mae_run)
    assert meta["method"] == "asuka-mae" and meta["generator"]["partial"]
    prior = build_prior(meta["generator"], state)
    assert prior.image_size == 32 and prior.patch == 4
    log = pd.read_csv(mae_run / "metrics.csv")
    removed = log["train/removed"].dropna()
    assert len(removed) and (removed == 0.75).all()  # adaptive masking always removes 75 % of the tokens
    images, hole = images_and_holes()
    again = build_prior(meta["generator"], read_trained(mae_run)[1])
    with torch.no_grad():
        assert torch.equal(prior.features(images, hole), again.features(images, hole))


def test_holes_covering_too_many_tokens_are_redrawn(tmp_path):
    from inpaintlab.methods.asuka.mae import masking_fits, token_hole
    from inpaintlab.train.method import METHODS

    cfg = config("asuka-mae")
    method = METHODS.get("asuka-mae")(cfg, METHODS.get("asuka-mae").Config(patch_size=4), log=quiet)
    hole = torch.zeros(4, 1, 32, 32)
    hole[1] = 1  # every token
    hole[3, :, :, :28] = 1  # 56 of 64 tokens
    fixed = method.fitting_holes(hole, first=100)
    assert torch.equal(fixed[0], hole[0]) and torch.equal(fixed[2], hole[2])  # fitting holes are kept
    assert bool(masking_fits(token_hole(fixed, 4)).all())
    again = method.fitting_holes(hole, first=100)
    assert torch.equal(fixed, again)  # the redraws are keyed by (seed, sample position)
    other = method.fitting_holes(hole, first=200)
    assert not torch.equal(fixed[1], other[1])


def test_random_masking_is_plain_mae_pretraining_and_a_run_continues(mae_run, tmp_path):
    out = tmp_path / "control"
    TrainRun(config("asuka-mae", steps=1), {"pretrained": str(mae_run), "masking": "random"}, out, log=quiet).run()
    meta, state = read_trained(out)
    start = read_trained(mae_run)[1]
    moved = [k for k in state if not torch.equal(state[k], start[k])]
    assert moved and all("position" not in k and "pos_embed" not in k for k in moved)  # frozen tables stay
    with pytest.raises(InpaintlabError, match="MAE at 32 px"):
        TrainRun(config("asuka-mae", size=64), {"pretrained": str(mae_run)}, tmp_path / "wrong", log=quiet).run()


# ---- asuka-align -----------------------------------------------------------------------------------

def test_the_alignment_trains_through_the_frozen_base_and_records_its_mae(align_run, mae_run, pipeline):
    meta, state = read_trained(align_run)
    gen = meta["generator"]
    assert gen["kind"] == "alignment" and gen["base"] == pipeline
    assert gen["mae"]["run"] and gen["mae"]["path"] == str(mae_run.resolve())
    assert all(k.startswith(("proj", "blocks", "norm")) for k in state)  # only the alignment module is exported
    log = pd.read_csv(align_run / "metrics.csv")
    assert log["train/p_full"].dropna().iloc[-1] == pytest.approx(0.1)


def test_the_sampler_is_diffusers_sd_inpainting_loop(pipeline, one_thread):
    """Our loop (per-sample generators, our latents) equals StableDiffusionInpaintPipeline with prompt_embeds=c."""
    from diffusers import StableDiffusionInpaintPipeline

    from inpaintlab.methods.asuka.sampler import asuka_sample, base_scheduler

    pipe = StableDiffusionInpaintPipeline.from_pretrained(pipeline, safety_checker=None, local_files_only=True,
                                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    images, hole = images_and_holes(2)  # holes on whole latent cells (factor 2): nearest = any-pixel
    cond = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(3))
    ref = pipe(prompt_embeds=cond, image=images, mask_image=hole, height=32, width=32, num_inference_steps=3,
               guidance_scale=1.0, generator=per_sample_generators(torch.Generator().manual_seed(1), 2),
               output_type="latent", strength=1.0).images
    with torch.no_grad():
        ours = asuka_sample(pipe.unet, pipe.vae, base_scheduler(pipeline), images, hole, cond,
                            per_sample_generators(torch.Generator().manual_seed(1), 2), 3)
    assert_close(ours, ref, DEEP_RTOL, "ASUKA's sampling loop vs diffusers' pipeline")


@pytest.mark.parametrize("options", [{"condition": "align"}, {"condition": "empty"}, {"condition_scale": 0.5}])
def test_the_inpainter_keeps_pixels_and_is_batch_independent(align_run, pipeline, options, one_thread):
    opts = {"align": str(align_run)} if options.get("condition", "align") == "align" else {"base": pipeline}
    model = load_inpainter("asuka", steps=3, device="cpu", **opts, **options)
    images, hole = images_and_holes()
    out = model(images, hole, generator=torch.Generator().manual_seed(1))
    assert out.shape == images.shape
    assert torch.equal(out * (1 - hole), images * (1 - hole))
    again = model(images, hole, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    alone = model(images[2:], hole[2:], generator=per_sample_generators(torch.Generator().manual_seed(1), 3)[2:])
    assert_close(out[2:], alone, DEEP_RTOL, "a sample alone equals it in a batch")


def test_the_condition_is_the_aligned_prior_of_the_kept_pixels(align_run, one_thread):
    model = load_inpainter("asuka", align=str(align_run), steps=2, device="cpu").backend
    images, hole = images_and_holes()
    other = torch.where(hole > 0, torch.rand_like(images), images)
    with torch.no_grad():
        cond = model.condition(images, hole)
        assert cond.shape == (3, 64, 32)
        assert torch.equal(cond, model.condition(other, hole))  # hole content never reaches the condition
        assert not torch.equal(cond, model.condition(images, torch.zeros_like(hole)))
        half = load_inpainter("asuka", align=str(align_run), condition_scale=0.5, device="cpu").backend
        assert_close(half.condition(images, hole), 0.5 * cond, 1e-6, "a 256-token condition is scaled towards 0")


def test_a_changed_mae_is_refused_and_errors_are_one_line(align_run, mae_run, pipeline, tmp_path):
    with pytest.raises(InpaintlabError, match="needs --option align"):
        load_inpainter("asuka")
    with pytest.raises(InpaintlabError, match="no such file"):
        load_inpainter("asuka", align=str(tmp_path / "none"))
    with pytest.raises(InpaintlabError, match="not an inpainting UNet"):
        load_inpainter("asuka", condition="empty", base=str(save_tiny_pipeline(tmp_path / "t2i", in_channels=4)))
    moved = tmp_path / "mae-copy"
    shutil.copytree(mae_run, moved)
    meta, state = read_trained(moved)
    state = {k: (v + 1 if k.endswith("decoder_pred.bias") else v) for k, v in state.items()}
    from inpaintlab.train.export import export_state

    export_state(state, meta, moved / "export")
    record = read_trained(align_run)
    gen = dict(record[0]["generator"], mae=dict(record[0]["generator"]["mae"], path=str(moved)))
    export_state(record[1], {**record[0], "generator": gen}, tmp_path / "align-export")
    with pytest.raises(InpaintlabError, match="changed since"):
        load_inpainter("asuka", align=str(tmp_path / "align-export"), device="cpu")


# ---- asuka-decoder ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def decoder_run(pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("decoder") / "run"
    TrainRun(config("asuka-decoder"), {"base": pipeline, "perceptual": "none", "latent_aug": "1", "t_max": "999"},
             out, log=quiet).run()
    return out


def test_the_decoder_trains_from_the_base_kl_with_its_encoder_frozen(decoder_run, pipeline):
    from inpaintlab.methods.seamless.models import load_pretrained

    meta, state = read_trained(decoder_run)
    assert meta["generator"]["decoder"]["downsample"] == "any" and meta["generator"]["base"] == pipeline
    kl = load_pretrained("vae", pipeline).state_dict()
    frozen = [k for k in kl if k.startswith(("encoder.", "quant_conv.", "post_quant_conv."))]
    assert frozen and all(torch.equal(state[k], kl[k]) for k in frozen)  # the latent space stays the base's
    decoder = [k for k in kl if k.startswith("decoder.")]
    assert any(not torch.equal(state[k], kl[k]) for k in decoder)  # the decoder started at the KL's and moved
    assert any(k.startswith("decoder.condition_encoder.") for k in state)
    log = pd.read_csv(decoder_run / "metrics.csv")
    assert (log["train/latent_aug"].dropna() == 1.0).all()  # latent_aug=1: every sample's latent is the estimate
    lr = log["train/lr"].dropna().to_numpy()
    assert lr[0] == pytest.approx(8e-5) and lr[-1] == pytest.approx(8e-5 * warmup_cosine(1, 2))  # cosine decay


def test_only_the_latents_source_is_jittered_by_default():
    from inpaintlab.methods.asuka.method import decoder_inputs

    images, jittered = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    encoded, kept, target = decoder_inputs(images, jittered, "latent_only")
    assert encoded is jittered and kept is images and target is images
    assert all(t is jittered for t in decoder_inputs(images, jittered, "all"))
    assert all(t is images for t in decoder_inputs(images, jittered, "none"))


def test_the_inpainter_decodes_with_the_trained_decoder(decoder_run, align_run, one_thread):
    images, hole = images_and_holes()
    kl = load_inpainter("asuka", align=str(align_run), steps=2, device="cpu")
    ours = load_inpainter("asuka", align=str(align_run), decoder=str(decoder_run), steps=2, device="cpu")
    a = kl(images, hole, generator=torch.Generator().manual_seed(1))
    b = ours(images, hole, generator=torch.Generator().manual_seed(1))
    assert torch.equal(b * (1 - hole), images * (1 - hole))
    assert not torch.equal(a, b)  # the same latents, another decoder
    z = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():  # the decoder is given the kept pixels: changing the hole's content changes nothing
        other = torch.where(hole[:1] > 0, torch.rand_like(images[:1]), images[:1])
        assert torch.equal(ours.backend.decode(z, images[:1], hole[:1]), ours.backend.decode(z, other, hole[:1]))
    with pytest.raises(InpaintlabError, match="asuka-decoder"):
        load_inpainter("asuka", align=str(align_run), decoder=str(align_run))


def test_a_decoder_starts_from_asymmetric_vqgan_weights(pipeline, tmp_path):
    from diffusers import AsymmetricAutoencoderKL

    from inpaintlab.methods.asuka.decoder import CONDITION_WEIGHT

    torch.manual_seed(0)
    asym = AsymmetricAutoencoderKL(down_block_out_channels=(32, 64), up_block_out_channels=(32, 64),
                                   down_block_types=("DownEncoderBlock2D",) * 2,
                                   up_block_types=("UpDecoderBlock2D",) * 2, layers_per_down_block=1,
                                   layers_per_up_block=1, latent_channels=4, norm_num_groups=32)
    asym.save_pretrained(tmp_path / "asym")
    out = tmp_path / "run"
    notes = []
    TrainRun(config("asuka-decoder", steps=1), {"base": pipeline, "pretrained": str(tmp_path / "asym"),
                                                "perceptual": "none", "latent_aug": "0", "lr": "1e-12"},
             out, log=notes.append).run()
    assert any("encoder is not" in n for n in notes)  # a random encoder: not the base's latent space
    state = read_trained(out)[1]
    first = state[CONDITION_WEIGHT]
    assert first.shape[1] == 4 and torch.equal(first[:, :3], asym.state_dict()[CONDITION_WEIGHT])
    assert float(first[:, 3].abs().max()) < 1e-9  # the mask channel starts at zero (one step of lr 1e-12)


def test_pretrained_vitmae_folders_train_and_align(pipeline, tmp_path):
    """The GPU path on a tiny model: a ViTMAE saved by transformers is fine-tuned, or aligned as the p.t. MAE."""
    from inpaintlab.methods.asuka.mae import build_mae, mae_config

    build_mae(mae_config("tiny", patch_size=4), generator=torch.Generator().manual_seed(0)).save_pretrained(
        tmp_path / "vitmae")
    TrainRun(config("asuka-mae", steps=1), {"pretrained": str(tmp_path / "vitmae")}, tmp_path / "ft", log=quiet).run()
    meta, _ = read_trained(tmp_path / "ft")
    assert meta["generator"]["mae"]["patch_size"] == 4 and meta["generator"]["partial"]
    TrainRun(config("asuka-align", steps=1), {"base": pipeline, "mae": str(tmp_path / "vitmae"), "mae_size": "32",
                                              "variant": "linear", "val_steps": "1"}, tmp_path / "al", log=quiet).run()
    record = read_trained(tmp_path / "al")[0]["generator"]["mae"]
    assert record == {"path": str(tmp_path / "vitmae"), "run": False, "image_size": 32}
    model = load_inpainter("asuka", align=str(tmp_path / "al"), steps=1, device="cpu")
    assert model.backend.prior.image_size == 32 and model.backend.prior.partial is None
