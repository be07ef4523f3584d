"""Image I/O: modes, EXIF, alpha, broken files, bomb guard, atomic and safe saving."""
import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.errors import ImageError
from painterly.image import (
    check_output_path,
    fit_size,
    from_array,
    load_image,
    match_color,
    rgb_to_yiq,
    save_image,
    transfer_luminance,
)


def _gradient(h=20, w=30):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full((h, w), 40)], -1).astype(np.uint8)


def test_rgb_png_round_trip(tmp_path):
    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.rgb.shape == (1, 3, 20, 30) and img.alpha is None and img.size == (20, 30)
    assert img.rgb.dtype == torch.float32 and 0 <= img.rgb.min() and img.rgb.max() <= 1
    save_image(img.rgb, tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif, quality=100)
    img = load_image(tmp_path / "r.jpg")
    assert img.size == (20, 10)  # portrait after rotation
    top, bottom = img.rgb[0, :, :5].mean().item(), img.rgb[0, :, -5:].mean().item()
    assert top > 0.9 and bottom < 0.1  # the white left half is now on top


def test_grayscale(tmp_path):
    Image.fromarray(_gradient()[..., 0], "L").save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.rgb.shape == (1, 3, 20, 30)
    assert torch.equal(img.rgb[:, 0], img.rgb[:, 1]) and torch.equal(img.rgb[:, 1], img.rgb[:, 2])


def test_palette_with_and_without_transparency(tmp_path):
    p = Image.fromarray(_gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p.save(tmp_path / "p.png")
    img = load_image(tmp_path / "p.png")
    assert img.rgb.shape == (1, 3, 20, 30) and img.alpha is None
    p.info["transparency"] = 0
    p.save(tmp_path / "pt.png", transparency=0)
    img = load_image(tmp_path / "pt.png")
    assert img.alpha is not None and img.alpha.min() == 0


def test_cmyk(tmp_path):
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)  # pure red
    img = load_image(tmp_path / "c.jpg")
    r, g, b = img.rgb[0].mean(dim=(1, 2)).tolist()
    assert r > 0.85 and g < 0.15 and b < 0.15


def test_16_bit(tmp_path):
    arr = np.linspace(0, 65535, 20 * 30).reshape(20, 30).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    img = load_image(tmp_path / "d.png")
    assert img.rgb.shape == (1, 3, 20, 30)
    assert img.rgb.min().item() == pytest.approx(0, abs=1e-4) and img.rgb.max().item() == pytest.approx(1, abs=1e-4)


def test_alpha_round_trip(tmp_path):
    rgba = np.dstack([_gradient(), np.tile(np.arange(30, dtype=np.uint8) * 8, (20, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.alpha is not None and img.alpha.shape == (1, 1, 20, 30)
    save_image(img.rgb, tmp_path / "out.png", alpha=img.alpha)
    back = np.asarray(Image.open(tmp_path / "out.png"))
    assert back.shape == (20, 30, 4)
    assert np.array_equal(back[..., 3], rgba[..., 3])
    # alpha is resized to a different output size
    save_image(torch.rand(1, 3, 10, 15), tmp_path / "small.png", alpha=img.alpha)
    assert Image.open(tmp_path / "small.png").mode == "RGBA"
    # fully opaque alpha is dropped
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(opaque, "RGBA").save(tmp_path / "o.png")
    assert load_image(tmp_path / "o.png").alpha is None


def test_missing_folder_not_image_corrupt_truncated(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)
    (tmp_path / "t.txt").write_text("hello, I am text")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "t.txt")
    buf = io.BytesIO()
    Image.fromarray(_gradient(200, 200)).save(buf, "JPEG")
    data = buf.getvalue()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(tmp_path / "trunc.jpg")
    buf = io.BytesIO()
    Image.fromarray(_gradient(64, 64)).save(buf, "PNG")
    bad = bytearray(buf.getvalue())
    bad[60:90] = b"\x00" * 30  # smash the start of the image data
    (tmp_path / "corrupt.png").write_bytes(bytes(bad))
    with pytest.raises(ImageError):
        load_image(tmp_path / "corrupt.png")
    with pytest.raises(ImageError):
        load_image(b"\x89PNG\r\n\x1a\n garbage")


def test_decompression_bomb_guard(tmp_path):
    # a 1-bit 10000 x 10000 PNG is a few KB on disk but 100M pixels decoded
    Image.new("1", (10000, 10000)).save(tmp_path / "bomb.png")
    assert os.path.getsize(tmp_path / "bomb.png") < 200_000
    with pytest.raises(ImageError, match="over the limit"):
        load_image(tmp_path / "bomb.png")
    Image.fromarray(_gradient()).save(tmp_path / "s.png")
    with pytest.raises(ImageError, match="over the limit"):
        load_image(tmp_path / "s.png", max_pixels=100)


def test_fit_size():
    assert fit_size(400, 600, size=300) == (200, 300)
    assert fit_size(400, 600) == (400, 600)
    h, w = fit_size(1000, 1000, max_pixels=10_000)
    assert h * w <= 10_000 and h == w
    with pytest.raises(ValueError):
        fit_size(10, 10, size=0)


def test_no_overwrite_without_force(tmp_path):
    out = tmp_path / "out.png"
    save_image(torch.zeros(1, 3, 4, 4), out)
    with pytest.raises(ImageError, match="already exists"):
        save_image(torch.ones(1, 3, 4, 4), out)
    assert np.asarray(Image.open(out)).max() == 0  # untouched
    save_image(torch.ones(1, 3, 4, 4), out, overwrite=True)
    assert np.asarray(Image.open(out)).min() == 255


def test_input_is_never_overwritten(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(_gradient()).save(src)
    before = src.read_bytes()
    with pytest.raises(ImageError, match="input"):
        save_image(torch.zeros(1, 3, 4, 4), src, overwrite=True, inputs=[src])
    with pytest.raises(ImageError, match="input"):
        check_output_path(tmp_path / "." / "in.png", overwrite=True, inputs=[str(src)])
    assert src.read_bytes() == before


def test_bad_output_paths(tmp_path):
    with pytest.raises(ImageError, match="unsupported"):
        check_output_path(tmp_path / "x.gifx")
    with pytest.raises(ImageError, match="does not exist"):
        check_output_path(tmp_path / "no" / "x.png")


def test_save_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "out.png"
    save_image(torch.zeros(1, 3, 4, 4), out)
    original = out.read_bytes()

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(ImageError) as e:  # one line naming the output, never the temporary file
        save_image(torch.ones(1, 3, 4, 4), out, overwrite=True)
    assert str(e.value) == f"{out}: cannot write (disk full)"
    assert out.read_bytes() == original  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left behind


def test_jpeg_output_composites_alpha(tmp_path):
    save_image(torch.zeros(1, 3, 4, 4), tmp_path / "o.jpg", alpha=torch.zeros(1, 1, 4, 4))
    assert np.asarray(Image.open(tmp_path / "o.jpg")).min() > 240  # transparent black -> white


def test_from_array_types():
    assert from_array(np.zeros((4, 5), np.uint8)).shape == (1, 3, 4, 5)
    assert from_array(np.full((4, 5, 4), 65535, np.uint16)).max() == 1
    with pytest.raises(ValueError):
        from_array(np.zeros((4, 5, 2)))


def test_colour_helpers():
    torch.manual_seed(0)
    stylized = 0.3 + 0.4 * torch.rand(1, 3, 16, 16)  # mid-range: no clamping below
    content = 0.4 + 0.2 * torch.rand(1, 3, 16, 16)
    out = transfer_luminance(stylized, content)
    yiq = rgb_to_yiq
    assert torch.allclose(yiq(out)[:, 0], yiq(stylized)[:, 0], atol=1e-4)  # stylized luminance
    assert torch.allclose(yiq(out)[:, 1:], yiq(content)[:, 1:], atol=1e-4)  # content chroma
    src = torch.rand(1, 3, 16, 16) * 0.3
    tgt = torch.rand(1, 3, 16, 16) * 0.5 + 0.4
    m = match_color(src, tgt)
    assert torch.allclose(m.mean(dim=(2, 3)), tgt.mean(dim=(2, 3)), atol=0.02)
