"""The published .pth files (simulated: our networks saved as the reference saves them) imported and sampled."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.methods.strdiffusion.discriminator import DiscriminatorConfig, TimeDiscriminator
from inpaintlab.methods.strdiffusion.published import import_irsde, import_strdiffusion
from inpaintlab.methods.strdiffusion.unet import ConditionalUNet, UNetConfig


def saved(tmp_path, name: str, net: torch.nn.Module, data_parallel: bool = False):
    """The reference's ``save_network``: the module's state dict on CPU (a DataParallel copy keys it ``module.``)."""
    state = {("module." + k if data_parallel else k): v.cpu() for k, v in net.state_dict().items()}
    torch.save(state, tmp_path / name)
    return tmp_path / name


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Three reference-shaped networks of odd widths, trained nowhere but randomly initialised, saved as .pth."""
    folder = tmp_path_factory.mktemp("published")
    torch.manual_seed(0)
    nets = {"structure": ConditionalUNet(UNetConfig(1, 1, 6, 2)),
            "texture": ConditionalUNet(UNetConfig(3, 3, 6, 2, spade=True)),
            "discriminator": TimeDiscriminator(DiscriminatorConfig(ngf=3, t_emb_dim=8))}
    for net in nets.values():  # non-default values everywhere, so a weight that is not loaded shows
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.01 * torch.randn_like(p))
    files = {p: saved(folder, f"{p}.pth", n, data_parallel=(p == "discriminator")) for p, n in nets.items()}
    return nets, files


def test_the_published_parts_load_with_their_widths_and_sample_as_the_networks_do(published, tmp_path, one_thread):
    nets, files = published
    out = import_strdiffusion(tmp_path / "sd", T=12, **files)
    for part in ("structure", "texture", "discriminator"):
        meta = json.loads((out / part / "export" / "generator.json").read_text())
        assert meta["generator"]["sde"] == {"T": 12, "max_sigma": 30.0, "eps": 0.005}
        assert meta["generator"]["edge_sigma"] == 2.0 and meta["source"] == str(files[part].resolve())
    model = load_inpainter("strdiffusion", checkpoint=str(out), device="cpu")
    loaded = model.backend.nets
    assert loaded["texture"].cfg == UNetConfig(3, 3, 6, 2, spade=True)
    assert loaded["discriminator"].cfg == DiscriminatorConfig(nc=4, ngf=3, t_emb_dim=8)
    torch.manual_seed(1)
    y, s, t = torch.rand(2, 3, 16, 16), torch.rand(2, 1, 16, 16), torch.tensor([3, 7])
    for part in ("structure", "texture"):
        a, b = nets[part].eval(), loaded[part]
        x = y[:, :1] if part == "structure" else y
        with torch.no_grad():
            extra = {"structure": s} if part == "texture" else {}
            assert torch.equal(a(x, x * 0.5, t, **extra), b(x, x * 0.5, t, **extra))
    with torch.no_grad():
        assert torch.equal(nets["discriminator"].score(t, y, s), loaded["discriminator"].score(t, y, s))
    image, hole = torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16)
    hole[..., 4:12, 4:12] = 1
    result = model(image, hole, generator=[torch.Generator().manual_seed(0)])
    assert torch.equal(result * (1 - hole), image * (1 - hole)) and model.backend.last_nfe[0] > 12


def test_ir_sde_imports_from_the_command_line(monkeypatch, capsys, tmp_path, one_thread):
    from ..test_cli import run_cli

    torch.manual_seed(0)
    net = ConditionalUNet(UNetConfig(3, 3, 4, 2))
    path = saved(tmp_path, "lastest_EMA.pth", net, data_parallel=True)
    code, out, err = run_cli(monkeypatch, capsys, "strdiffusion", "import-ir-sde", str(path), "--T", "8", "--out",
                             str(tmp_path / "irsde"))
    assert code == 0, err
    assert "--model ir-sde --option checkpoint=" in out
    model = load_inpainter("ir-sde", checkpoint=str(tmp_path / "irsde"), device="cpu")
    assert model.backend.schedule.cfg.T == 8 and model.backend.fill == 1.0
    x, t = torch.rand(1, 3, 8, 8), torch.tensor([4])
    with torch.no_grad():
        assert torch.equal(net.eval()(x, x, t), model.backend.net(x, x, t))


def test_files_that_do_not_fit_are_one_line_and_nothing_is_written(published, tmp_path):
    _, files = published
    swapped = {**files, "structure": files["texture"], "texture": files["structure"]}
    with pytest.raises(InpaintlabError, match="not the StrDiffusion structure network .*are the files swapped"):
        import_strdiffusion(tmp_path / "a", T=12, **swapped)
    with pytest.raises(InpaintlabError, match="not StrDiffusion's discriminator"):
        import_strdiffusion(tmp_path / "a", T=12, **{**files, "discriminator": files["structure"]})
    state = torch.load(files["texture"], weights_only=True)
    del state["downs.1.4.conv_0.weight_orig"]
    torch.save(state, tmp_path / "damaged.pth")
    with pytest.raises(InpaintlabError, match=r"does not fit .*missing 1 keys \(e\.g\. downs\.1\.4\.conv_0\.weight_orig"):
        import_strdiffusion(tmp_path / "a", T=12, **{**files, "texture": tmp_path / "damaged.pth"})
    assert not (tmp_path / "a").exists()  # every file is checked before anything is written
    with pytest.raises(InpaintlabError, match="no such file"):
        import_irsde(tmp_path / "b", tmp_path / "absent.pth", T=100)


class Payload:
    """An object whose unpickling would run code: a weights-only load must refuse it."""

    def __reduce__(self):
        return (print, ("this ran",))


def test_a_pth_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"init_conv.weight": Payload()}, f, protocol=2)
    with pytest.raises(InpaintlabError, match="evil.pth is not a readable IR-SDE checkpoint"):
        import_irsde(tmp_path / "b", path, T=100)
    assert "this ran" not in capsys.readouterr().out
    torch.save({"init_conv.weight": torch.zeros(4, 6, 7, 7), "note": "text"}, tmp_path / "mixed.pth")
    with pytest.raises(InpaintlabError, match="not a state dict of tensors"):
        import_irsde(tmp_path / "b", tmp_path / "mixed.pth", T=100)


def test_the_import_command_writes_the_folder_the_inpainter_takes_and_refuses_bad_input_in_one_line(
        published, monkeypatch, capsys, tmp_path):
    from ..test_cli import run_cli

    _, files = published
    args = ["strdiffusion", "import", "--structure", str(files["structure"]), "--texture", str(files["texture"])]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--T", "12", "--out", str(tmp_path / "sd"))
    assert code == 0, err
    assert "checkpoint=" in out and "--option resampling=false" in out  # no discriminator given
    assert sorted(p.name for p in (tmp_path / "sd").iterdir()) == ["structure", "texture"]
    load_inpainter("strdiffusion", checkpoint=str(tmp_path / "sd"), resampling=False, device="cpu")
    for bad, message in ((["--T", "1"], "--T must be at least 2"),
                         (["--T", "12", "--discriminator", str(tmp_path / "none.pth")], "none.pth: no such file")):
        code, out, err = run_cli(monkeypatch, capsys, *args, *bad, "--out", str(tmp_path / "other"))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "other").exists()
