"""Tests for inpaintlab.images: every case is built in tmp_path with PIL / cv2 / numpy."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps, features

from inpaintlab import images as im_mod
from inpaintlab.errors import BadImageError, BadMaskError, InpaintlabError
from inpaintlab.images import (
    SUPPORTED_SUFFIXES,
    builtin_images,
    image_files,
    load_image,
    load_mask,
    pad_to_square,
    read_image,
    resize,
    save_image,
    save_mask,
    to_numpy_uint8,
    to_tensor,
    validate_hole,
    validate_images,
)

U16_ATOL = 0.5 / 65535  # half a 16-bit step: the value survived with 16-bit precision


@pytest.fixture
def rgb_u8() -> np.ndarray:
    """A small non-square random RGB image."""
    return np.random.default_rng(0).integers(0, 256, size=(7, 11, 3), dtype=np.uint8)


def _one_line_naming(exc: pytest.ExceptionInfo, path) -> None:
    """Assert the error is one line and names the file."""
    text = str(exc.value)
    assert "\n" not in text
    assert str(path) in text


def _png_with_exif(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk carrying ``orientation`` right after a PNG's IHDR chunk."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()
    if data.startswith(b"Exif\x00\x00"):
        data = data[6:]
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data))
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


# ---------------------------------------------------------------------------------------------
# reading: formats and colour modes


def test_every_supported_suffix_is_listed_and_read(tmp_path, rgb_u8):
    """What image_files accepts (any case), read_image reads: one file per supported suffix, saved by Pillow."""
    formats = Image.registered_extensions()
    names = []
    for i, suffix in enumerate(sorted(SUPPORTED_SUFFIXES)):
        assert suffix == suffix.lower() and suffix in formats, suffix  # a format Pillow knows
        names.append(f"im{i}{suffix.upper() if i % 2 else suffix}")
        Image.fromarray(rgb_u8).save(tmp_path / names[-1], format=formats[suffix])
    Image.fromarray(rgb_u8).save(tmp_path / "other.gif")  # readable, but not an image_files suffix
    assert sorted(p.name for p in image_files(str(tmp_path))) == sorted(names)
    for name in names:
        assert read_image(tmp_path / name).shape == rgb_u8.shape


def test_pillow_has_webp():
    # WebP is a supported format: the Pillow wheels we depend on carry it.
    assert features.check("webp")


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff", ".bmp", ".webp"])
def test_lossless_read_is_exact(tmp_path, rgb_u8, suffix):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(rgb_u8).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    arr = read_image(path)
    assert arr.dtype == np.float32 and arr.shape == (7, 11, 3)
    np.testing.assert_array_equal(arr, rgb_u8.astype(np.float32) / np.float32(255))
    # at native size and quantized, load_image equals the uint8 conversion bit for bit
    t = load_image(path, size=None)
    assert t.dtype == torch.float32 and t.shape == (1, 3, 7, 11)
    assert torch.equal(t, to_tensor(rgb_u8))


def test_jpeg_read_is_close(tmp_path):
    smooth = np.dstack([*np.meshgrid(np.linspace(0, 255, 32), np.linspace(255, 0, 24)), np.full((24, 32), 90.0)])
    smooth = smooth.astype(np.uint8)
    path = tmp_path / "img.JPG"  # upper-case suffix
    Image.fromarray(smooth).save(path, format="JPEG", quality=95)
    arr = read_image(path)
    assert arr.shape == (24, 32, 3)
    assert np.abs(arr - smooth / 255.0).mean() < 0.01


def test_grayscale_gives_three_equal_channels(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    assert Image.open(path).mode == "L"
    arr = read_image(path)
    assert arr.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(arr[..., c], gray / np.float32(255))


def test_bilevel_mode_1(tmp_path):
    bits = np.array([[0, 1], [1, 0]], dtype=bool)
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(read_image(path)[..., 1], bits.astype(np.float32))


def test_palette_gives_expected_rgb(tmp_path):
    pal = Image.new("P", (3, 2))
    pal.putpalette([255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * (256 * 3 - 9))
    pal.putdata([0, 1, 2, 2, 1, 0])
    path = tmp_path / "pal.png"
    pal.save(path)
    arr = read_image(path)
    expected = np.array([[[255, 0, 0], [0, 255, 0], [10, 20, 30]], [[10, 20, 30], [0, 255, 0], [255, 0, 0]]])
    np.testing.assert_array_equal(arr, expected.astype(np.float32) / np.float32(255))


def test_palette_transparency_composited(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    pal.putdata([0, 1])
    path = tmp_path / "pal_t.png"
    pal.save(path, transparency=1)  # index 1 fully transparent
    arr = read_image(path, pad_color=(10, 20, 30))
    np.testing.assert_array_equal(arr[0, 0], np.array([255, 0, 0], np.float32) / 255)
    np.testing.assert_allclose(arr[0, 1], np.array([10, 20, 30]) / 255, atol=1e-7)


def test_rgba_composited_on_pad_colour(tmp_path):
    rgba = np.array([[[200, 100, 50, 128], [200, 100, 50, 0], [200, 100, 50, 255]]], dtype=np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    pad = (0, 0, 255)
    arr = read_image(path, pad_color=pad)
    a = 128 / 255
    expected_half = np.array([200, 100, 50]) / 255 * a + np.array(pad) / 255 * (1 - a)
    np.testing.assert_allclose(arr[0, 0], expected_half, atol=1e-6)
    np.testing.assert_allclose(arr[0, 1], np.array(pad) / 255, atol=1e-7)
    np.testing.assert_allclose(arr[0, 2], np.array([200, 100, 50]) / 255, atol=1e-7)
    # after quantize: the blended value on the 8-bit grid
    t = load_image(path, size=None, pad_color=pad)
    np.testing.assert_allclose(t[0, :, 0, 0].numpy(), np.round(expected_half * 255) / 255, atol=1e-7)


def test_la_composited(tmp_path):
    la = Image.fromarray(np.array([[[100, 0], [100, 255]]], dtype=np.uint8), mode="LA")
    path = tmp_path / "la.png"
    la.save(path)
    arr = read_image(path, pad_color=(255, 255, 255))
    np.testing.assert_allclose(arr[0, 0], [1.0, 1.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(arr[0, 1], [100 / 255] * 3, atol=1e-7)


def test_cmyk(tmp_path):
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red
    path = tmp_path / "cmyk.tif"
    cmyk.save(path)
    arr = read_image(path)
    np.testing.assert_array_equal(arr, np.broadcast_to(np.array([1.0, 0, 0], np.float32), (2, 2, 3)))


def test_first_frame_of_multiframe(tmp_path):
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    blue = Image.new("RGB", (4, 4), (0, 0, 255))
    path = tmp_path / "anim.gif"
    red.save(path, save_all=True, append_images=[blue])
    assert getattr(Image.open(path), "n_frames", 1) == 2
    arr = read_image(path)
    np.testing.assert_array_equal(arr[0, 0], [1.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------------
# 16-bit


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_gray_keeps_precision(tmp_path, suffix):
    g = np.array([[32768, 1, 65535, 0]], dtype=np.uint16)
    path = tmp_path / f"g16{suffix}"
    assert cv2.imwrite(str(path), g)
    arr = read_image(path)
    np.testing.assert_allclose(arr[..., 0], g / 65535.0, atol=U16_ATOL, rtol=0)
    assert abs(arr[0, 0, 0] - 128 / 255) > 1e-4  # not cut to 8 bits
    np.testing.assert_array_equal(arr[..., 0], arr[..., 2])
    t = load_image(path, size=None, quantize=False)
    assert abs(float(t[0, 0, 0, 0]) - 32768 / 65535) < U16_ATOL
    tq = load_image(path, size=None)  # quantized onto the 8-bit grid
    assert float(tq[0, 0, 0, 0]) == pytest.approx(128 / 255, abs=1e-7)


def test_16bit_big_endian_and_int_tiff(tmp_path):
    g = np.array([[32768, 1, 65535]], dtype=np.uint16)
    path = tmp_path / "be.tif"
    Image.frombytes("I;16B", (3, 1), g.astype(">u2").tobytes()).save(path)
    assert Image.open(path).mode == "I;16B"
    np.testing.assert_allclose(read_image(path)[0, :, 1], g[0] / 65535.0, atol=U16_ATOL, rtol=0)
    path_i = tmp_path / "i32.tif"
    Image.fromarray(g.astype(np.int32)).save(path_i)
    assert Image.open(path_i).mode == "I"
    np.testing.assert_allclose(read_image(path_i)[0, :, 0], g[0] / 65535.0, atol=U16_ATOL, rtol=0)
    path_big = tmp_path / "big.tif"
    Image.fromarray(np.array([[70000]], dtype=np.int32)).save(path_big)
    with pytest.raises(BadImageError, match="0-65535"):
        read_image(path_big)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rgb_keeps_precision(tmp_path, suffix):
    rgb = np.zeros((3, 4, 3), dtype=np.uint16)
    rgb[0, 0] = (32768, 1000, 65535)
    rgb[2, 3] = (1, 2, 3)
    path = tmp_path / f"rgb16{suffix}"
    assert cv2.imwrite(str(path), rgb[..., ::-1])  # cv2 writes BGR
    arr = read_image(path)
    assert arr.shape == (3, 4, 3) and arr.dtype == np.float32
    np.testing.assert_allclose(arr, rgb / 65535.0, atol=U16_ATOL, rtol=0)


def test_16bit_rgba_composited(tmp_path):
    rgba = np.zeros((1, 2, 4), dtype=np.uint16)
    rgba[0, 0] = (32768, 0, 65535, 65535)
    rgba[0, 1] = (65535, 65535, 65535, 32768)
    path = tmp_path / "rgba16.png"
    assert cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]])
    arr = read_image(path, pad_color=(0, 0, 0))
    np.testing.assert_allclose(arr[0, 0], [32768 / 65535, 0, 1], atol=U16_ATOL, rtol=0)
    np.testing.assert_allclose(arr[0, 1], [32768 / 65535] * 3, atol=U16_ATOL, rtol=0)


def test_truncated_16bit_rgb_png(tmp_path):
    rgb = np.random.default_rng(6).integers(0, 65536, (64, 64, 3), dtype=np.uint16)
    ok, buf = cv2.imencode(".png", rgb)
    assert ok
    path = tmp_path / "t16.png"
    path.write_bytes(buf.tobytes()[: buf.size // 2])
    with pytest.raises(BadImageError, match="truncated") as exc:
        read_image(path)
    _one_line_naming(exc, path)


def test_float_tiff(tmp_path):
    """Float TIFFs: Pillow reads 1-channel ones, OpenCV the 3-channel ones Pillow cannot."""
    gray = np.array([[0.25, 0.5], [1.0, 0.0]], dtype=np.float32)
    assert cv2.imwrite(str(tmp_path / "f1.tif"), gray)
    np.testing.assert_array_equal(read_image(tmp_path / "f1.tif")[..., 2], gray)
    rgb = np.dstack([gray, gray * 0.5, gray * 0.25])
    assert cv2.imwrite(str(tmp_path / "f3.tif"), rgb[..., ::-1])
    np.testing.assert_array_equal(read_image(tmp_path / "f3.tif"), rgb)
    assert cv2.imwrite(str(tmp_path / "hdr.tif"), rgb * 4)
    with pytest.raises(BadImageError, match=r"within \[0, 1\]"):
        read_image(tmp_path / "hdr.tif")


# ---------------------------------------------------------------------------------------------
# EXIF orientation


def test_exif_orientation_6_rotates(tmp_path):
    img = np.zeros((4, 6, 3), dtype=np.uint8)  # H=4, W=6 as stored
    img[0, 0] = (255, 0, 0)  # stored top-left is red
    pil = Image.fromarray(img)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.png"
    pil.save(path, exif=exif)
    arr = read_image(path)
    assert arr.shape == (6, 4, 3)  # upright: W and H swapped
    np.testing.assert_array_equal(arr[0, -1], [1.0, 0.0, 0.0])  # top-left went to top-right
    assert arr[0, 0].sum() == 0
    jpg = tmp_path / "rot.jpg"
    pil.save(jpg, exif=exif, quality=95)
    assert read_image(jpg).shape == (6, 4, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_same_for_16bit_path(tmp_path, orientation):
    """The OpenCV (16-bit colour) path orients exactly like ImageOps.exif_transpose."""
    rgb8 = np.random.default_rng(orientation).integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    rgb16 = rgb8.astype(np.uint16) * 257  # same values, 16-bit
    ok, buf = cv2.imencode(".png", rgb16[..., ::-1])
    assert ok
    path16 = tmp_path / "o16.png"
    path16.write_bytes(_png_with_exif(buf.tobytes(), orientation))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path8 = tmp_path / "o8.png"
    Image.fromarray(rgb8).save(path8, exif=exif)
    assert Image.open(path16).getexif().get(0x0112) == orientation
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path8))).astype(np.float32) / 255
    np.testing.assert_allclose(read_image(path16), expected, atol=1e-6)
    np.testing.assert_array_equal(read_image(path8), expected)


# ---------------------------------------------------------------------------------------------
# pad to square and resize


def test_pad_to_square_centred_bands():
    image = np.ones((4, 10, 3), dtype=np.float32)
    out = pad_to_square(image, (10, 20, 30))
    assert out.shape == (10, 10, 3) and out.dtype == np.float32
    band = np.array([10, 20, 30], dtype=np.float32) / 255
    assert np.all(out[:3] == band) and np.all(out[7:] == band)  # 3 rows above, 3 below
    assert np.all(out[3:7] == 1.0)
    # odd remainder: the extra row/column goes to the bottom/right band
    odd = pad_to_square(np.ones((10, 5, 3), dtype=np.float32))
    assert np.all(odd[:, :2] == 0) and np.all(odd[:, 2:7] == 1) and np.all(odd[:, 7:] == 0)
    # uint8 input: band is the 0-255 colour itself
    u8 = pad_to_square(np.full((2, 4, 3), 9, np.uint8), (1, 2, 3))
    assert u8.dtype == np.uint8 and tuple(u8[0, 0]) == (1, 2, 3) and tuple(u8[1, 1]) == (9, 9, 9)
    # square input: unchanged copy
    sq = np.random.default_rng(1).random((5, 5, 3)).astype(np.float32)
    out_sq = pad_to_square(sq)
    assert out_sq is not sq and np.array_equal(out_sq, sq)


def test_pad_colour_validated():
    with pytest.raises(InpaintlabError, match="pad colour"):
        pad_to_square(np.zeros((2, 3, 3), np.float32), (0, 0, 256))
    with pytest.raises(InpaintlabError, match="pad colour"):
        pad_to_square(np.zeros((2, 3, 3), np.float32), (0, 0))


def test_resize_shrink_area_and_enlarge_cubic():
    checker = np.zeros((4, 4, 3), dtype=np.float32)
    checker[::2, ::2] = 1
    checker[1::2, 1::2] = 1
    small = resize(checker, 2)
    assert small.shape == (2, 2, 3) and small.dtype == np.float32
    np.testing.assert_allclose(small, 0.5, atol=1e-6)  # area averaging, not sampling
    noise = np.random.default_rng(2).random((16, 16, 3)).astype(np.float32)
    big = resize(noise, 100)
    assert big.shape == (100, 100, 3) and big.min() >= 0 and big.max() <= 1  # cubic overshoot clipped
    same = resize(noise, 16)
    assert np.array_equal(same, noise) and same is not noise


def test_load_image_512_nonsquare(tmp_path):
    img = np.full((300, 451, 3), 200, dtype=np.uint8)
    path = tmp_path / "wide.png"
    Image.fromarray(img).save(path)
    t = load_image(path, size=512, pad_color=(0, 0, 255))
    assert t.shape == (1, 3, 512, 512) and t.dtype == torch.float32
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    # top band is the pad colour, centre is the image, values on the 8-bit grid
    assert torch.equal(t[0, :, 0, 256], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(t[0, :, 256, 256], torch.full((3,), 200 / 255))
    assert torch.equal(torch.round(t * 255) / 255, t)
    band = (451 - 300) // 2 * 512 / 451  # band height after resizing: ~85.7 rows
    assert torch.equal(t[0, :, int(band) - 2, 256], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(t[0, :, int(band) + 2, 256], torch.full((3,), 200 / 255))
    # enlarging a small image
    small = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(small)
    t2 = load_image(small, size=64, quantize=False)
    assert t2.shape == (1, 3, 64, 64) and float(t2.min()) >= 0 and float(t2.max()) <= 1


# ---------------------------------------------------------------------------------------------
# errors


def test_bad_files_raise_one_line(tmp_path):
    good = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(good).save(buf, format="PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.fromarray(good).save(buf, format="JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (tmp_path / "text.png").write_text("not an image\nat all\n")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    cases = ["trunc.png", "trunc.jpg", "corrupt.png", "text.png", "empty.png", "folder.png", "missing.png"]
    for name in cases:
        path = tmp_path / name
        with pytest.raises(BadImageError) as exc:
            read_image(path)
        _one_line_naming(exc, path)
        assert str(exc.value).startswith(f"cannot read image {path}: ")
        with pytest.raises(BadImageError):
            load_image(path)
    with pytest.raises(BadImageError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(BadImageError, match="truncated"):
        read_image(tmp_path / "trunc.png")


# ---------------------------------------------------------------------------------------------
# tensors and saving


def test_to_tensor_and_back():
    u8 = np.random.default_rng(5).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    t = to_tensor(u8)
    assert t.shape == (1, 3, 5, 6) and t.dtype == torch.float32
    assert np.array_equal(to_numpy_uint8(t), u8)
    assert np.array_equal(to_numpy_uint8(t[0]), u8)
    f = to_tensor(u8.astype(np.float64) / 255)
    assert f.dtype == torch.float32 and torch.allclose(f, t)
    x = torch.tensor([0.5, 0.498, 1.0, 0.0, 1.0 / 255 * 0.49]).reshape(1, 1, 5).expand(3, 1, 5)
    assert to_numpy_uint8(x)[0, :, 0].tolist() == [128, 127, 255, 0, 0]
    with pytest.raises(BadImageError):
        to_numpy_uint8(torch.full((1, 3, 2, 2), 1.5))


@pytest.mark.parametrize("suffix", [".png", ".PNG", ".webp", ".tif", ".tiff", ".bmp", ""])
def test_save_image_lossless_round_trip(tmp_path, rgb_u8, suffix):
    path = tmp_path / "deep" / "er" / f"out{suffix}"
    t = to_tensor(rgb_u8)
    save_image(path, t)
    if suffix == "":
        assert Image.open(path).format == "PNG"
    assert torch.equal(load_image(path, size=None), t)
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temp file left


def test_save_image_jpeg(tmp_path):
    path = tmp_path / "out.jpeg"
    t = torch.full((1, 3, 16, 16), 0.5)
    save_image(path, t)
    with Image.open(path) as im:
        assert im.format == "JPEG"
    assert (load_image(path, size=None) - t).abs().max() < 0.01
    with pytest.raises(InpaintlabError, match="unsupported suffix"):
        save_image(tmp_path / "out.gif", t)


def test_save_image_failure_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    save_image(path, torch.zeros(1, 3, 4, 4))
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial garbage")
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(RuntimeError, match="encoder exploded"):
        save_image(path, torch.ones(1, 3, 4, 4))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.png"]
    assert torch.equal(load_image(path, size=None), torch.zeros(1, 3, 4, 4))


def test_save_image_file_mode_is_ordinary(tmp_path):
    path = tmp_path / "mode.png"
    save_image(path, torch.zeros(1, 3, 2, 2))
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


# ---------------------------------------------------------------------------------------------
# masks


def _write_gray(path: Path, arr: np.ndarray) -> Path:
    """Save a uint8 HxW array as a grayscale image."""
    Image.fromarray(arr).save(path)
    return path


def test_load_mask_binary_variants(tmp_path):
    m = np.zeros((4, 6), dtype=np.uint8)
    m[1:3, 2:5] = 1
    expected = torch.from_numpy(m.astype(np.float32))[None, None]
    for name, arr in [("m255.png", m * 255), ("m01.png", m)]:
        hole = load_mask(_write_gray(tmp_path / name, arr), size=(4, 6))
        assert hole.shape == (1, 1, 4, 6) and hole.dtype == torch.float32
        assert torch.equal(hole, expected)
    Image.fromarray(m.astype(bool)).save(tmp_path / "bits.png")
    assert torch.equal(load_mask(tmp_path / "bits.png"), expected)
    Image.fromarray(np.dstack([m * 255] * 3)).save(tmp_path / "rgb.png")
    assert torch.equal(load_mask(tmp_path / "rgb.png"), expected)
    save_mask(tmp_path / "saved" / "m.png", expected)
    assert np.unique(np.asarray(Image.open(tmp_path / "saved" / "m.png"))).tolist() == [0, 255]
    assert torch.equal(load_mask(tmp_path / "saved" / "m.png"), expected)


def test_load_mask_refuses_bad_masks(tmp_path):
    m = np.zeros((4, 6), dtype=np.uint8)
    m[1:3, 2:5] = 255
    soft = m.copy()
    soft[0, 0] = 128
    path = _write_gray(tmp_path / "soft.png", soft)
    with pytest.raises(BadMaskError, match="binarize it: white = hole, black = keep") as exc:
        load_mask(path)
    _one_line_naming(exc, path)
    coloured = np.dstack([m, m, np.zeros_like(m)])
    Image.fromarray(coloured).save(tmp_path / "col.png")
    with pytest.raises(BadMaskError, match="coloured"):
        load_mask(tmp_path / "col.png")
    ok = _write_gray(tmp_path / "ok.png", m)
    with pytest.raises(BadMaskError) as exc:
        load_mask(ok, size=(512, 512))
    assert "4x6" in str(exc.value) and "512x512" in str(exc.value)
    with pytest.raises(BadMaskError, match="cannot read mask"):
        load_mask(tmp_path / "missing.png")
    with pytest.raises(BadMaskError, match="losslessly"):
        save_mask(tmp_path / "m.jpg", torch.zeros(1, 1, 2, 2))
    with pytest.raises(BadMaskError, match="0 \\(keep\\) or 1"):
        save_mask(tmp_path / "m.png", torch.full((1, 1, 2, 2), 0.5))


# ---------------------------------------------------------------------------------------------
# validation


def test_validate_images():
    validate_images(torch.rand(2, 3, 4, 4))
    validate_images(torch.full((1, 3, 2, 2), 1 + 1e-7))  # rounding noise tolerated
    bad = [
        (torch.rand(3, 4, 4), "shape"),
        (torch.rand(1, 1, 4, 4), "shape"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "float"),
        (torch.full((1, 3, 2, 2), float("nan")), "NaN"),
        (torch.full((1, 3, 2, 2), float("inf")), "NaN"),
        (torch.full((1, 3, 2, 2), 1.01), r"\[0, 1\]"),
        (torch.full((1, 3, 2, 2), -0.01), r"\[0, 1\]"),
    ]
    for images, pattern in bad:
        with pytest.raises(BadImageError, match=pattern) as exc:
            validate_images(images, name="inputs")
        assert "\n" not in str(exc.value) and "inputs" in str(exc.value)


def test_validate_hole():
    images = torch.rand(3, 3, 8, 8)
    hole = torch.zeros(3, 1, 8, 8)
    hole[:, :, 2:4, 2:4] = 1
    validate_hole(hole, images)
    validate_hole(hole.bool(), images)
    with pytest.raises(BadMaskError) as exc:
        validate_hole(torch.zeros(3, 1, 8, 7), images)
    assert "(3, 1, 8, 7)" in str(exc.value) and "(3, 3, 8, 8)" in str(exc.value)
    soft = hole.clone()
    soft[1, 0, 0, 0] = 0.5
    with pytest.raises(BadMaskError, match="mask 1 is not binary"):
        validate_hole(soft, images)
    empty = hole.clone()
    empty[2] = 0
    with pytest.raises(BadMaskError, match="mask 2 is empty: nothing to inpaint"):
        validate_hole(empty, images)
    full = hole.clone()
    full[1] = 1
    with pytest.raises(BadMaskError, match="mask 1 covers the whole image: nothing is left to inpaint from"):
        validate_hole(full, images)


# ---------------------------------------------------------------------------------------------
# finding images


def test_builtin_images():
    paths = builtin_images()
    assert 6 <= len(paths) <= 10
    assert [p.name for p in paths] == sorted(p.name for p in paths)
    for p in paths:
        assert p.is_file()
        arr = read_image(p)
        assert arr.ndim == 3 and arr.shape[2] == 3 and min(arr.shape[:2]) >= 256
        assert 0.0 <= arr.min() and arr.max() <= 1.0 and arr.std() > 0.02
    assert image_files("builtin") == paths


def test_image_files(tmp_path, monkeypatch):
    for name in ["b.png", "a.JPG", "c.txt", ".hidden.png", "d.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    assert [p.name for p in image_files(str(tmp_path))] == ["a.JPG", "b.png", "d.tiff"]
    assert [p.name for p in image_files(str(tmp_path / "*.png"))] == ["b.png"]
    assert [p.name for p in image_files(str(tmp_path / "**" / "*.png"))] == ["b.png", "e.png"]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert [p.name for p in image_files("~/sub/*")] == ["e.png"]
    with pytest.raises(InpaintlabError, match="nothing_here") as exc:
        image_files(str(tmp_path / "nothing_here" / "*.png"))
    assert "\n" not in str(exc.value)
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(InpaintlabError, match="emptydir"):
        image_files(str(tmp_path / "emptydir"))


def test_module_does_not_import_torchvision():
    assert "torchvision" not in im_mod.__dict__
    for module in Path(im_mod.__file__).parent.glob("*.py"):  # every module of the package
        assert "import torchvision" not in module.read_text(), module.name
