"""The public API: ``painterly.stylize`` and the re-exports."""
import numpy as np
import pytest
import torch
from PIL import Image

import painterly as st
from painterly.stylizers import fast
from painterly.stylizers import optimize as optimize_mod


@pytest.fixture
def tiny_vgg(monkeypatch, tiny_encoder):
    monkeypatch.setattr(optimize_mod, "vgg19", lambda *a, **k: tiny_encoder)


def test_reexports():
    for name in ("stylize", "load_image", "save_image", "OptimizeOptions", "resolve_device", "StyleTransferError",
                 "ImageError", "transfer_luminance", "match_color", "fit_size"):
        assert hasattr(st, name), name


def test_accepts_paths_pil_numpy_tensors(tiny_vgg, tmp_path, content_image, style_image):
    opts = st.OptimizeOptions(steps=[3], device="cpu", seed=0, early_stop_tol=0)
    arr = (content_image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "c.png")
    pil = Image.fromarray((style_image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    results = [
        st.stylize(tmp_path / "c.png", pil, options=opts),
        st.stylize(str(tmp_path / "c.png"), [np.asarray(pil)], options=opts),
        st.stylize(arr, style_image[0], options=opts),
        st.stylize((tmp_path / "c.png").read_bytes(), [style_image], options=opts),
    ]
    for r in results:
        assert r.shape == (1, 3, 48, 64) and r.dtype == torch.float32 and 0 <= r.min() and r.max() <= 1
    assert torch.allclose(results[0], results[1], atol=1e-5)


def test_size_and_max_pixels(tiny_vgg, content_image, style_image):
    opts = st.OptimizeOptions(steps=[2], device="cpu", early_stop_tol=0)
    assert st.stylize(content_image, [style_image], size=32, options=opts).shape == (1, 3, 24, 32)
    out = st.stylize(content_image, [style_image], max_pixels=900, options=opts)
    assert out.shape[-2] * out.shape[-1] <= 900


def test_style_weights_override_options(tiny_vgg, content_image, style_image, second_style):
    opts = st.OptimizeOptions(steps=[5], device="cpu", seed=0, early_stop_tol=0, style_weights=[0.5, 0.5])
    a = st.stylize(content_image, [style_image, second_style], style_weights=[1, 0], options=opts)
    b = st.stylize(content_image, [style_image], options=opts.__class__(**{**opts.__dict__, "style_weights": None}))
    assert torch.allclose(a, b, atol=1e-6)


def test_errors_are_painterly_errors(tiny_vgg, content_image, style_image, tmp_path):
    with pytest.raises(st.StyleTransferError, match="method"):
        st.stylize(content_image, [style_image], method="magic")
    with pytest.raises(st.StyleTransferError):
        st.stylize(content_image, [])
    with pytest.raises(st.StyleTransferError, match="style weight"):
        st.stylize(content_image, [style_image], style_weights=[1, 2])
    with pytest.raises(st.ImageError, match="no such file"):
        st.stylize(tmp_path / "missing.png", [style_image])
    with pytest.raises(st.StyleTransferError):
        st.stylize(torch.rand(2, 3, 8, 8), [style_image])
    with pytest.raises(st.StyleTransferError):
        st.stylize(content_image, [object()])
    with pytest.raises(st.StyleTransferError, match="OptimizeOptions"):
        st.stylize(content_image, [style_image], method="optimize", options={"steps": 3})


def test_fast_without_model_is_a_clean_error(content_image, style_image, tmp_path):
    with pytest.raises(st.StyleTransferError):
        st.stylize(content_image, [style_image], method="fast",
                   options=fast.FastOptions(model=str(tmp_path / "missing.safetensors"), device="cpu"))


def test_auto_picks_by_options_type(tiny_vgg, content_image, style_image, monkeypatch):
    monkeypatch.setattr(st, "fast_available", lambda: True)
    called = {}
    monkeypatch.setattr(st, "stylize_fast", lambda c, s, o: called.setdefault("fast", c))
    st.stylize(content_image, [style_image], method="auto")
    assert "fast" in called
    out = st.stylize(content_image, [style_image], method="auto",
                     options=st.OptimizeOptions(steps=[1], device="cpu"))
    assert out.shape == content_image.shape


def test_an_injected_fast_stylizer_is_used(tiny_model_file, content_image, style_image):
    stylizer = fast.FastStylizer.from_model(str(tiny_model_file), "cpu")
    out = st.stylize(content_image, [style_image], stylizer=stylizer, options=fast.FastOptions(alpha=0.5))
    torch.testing.assert_close(out, stylizer(content_image, [style_image], fast.FastOptions(alpha=0.5)))


def test_resolve_method_is_one_rule(monkeypatch):
    """stylize(), the CLI and the demo share it: auto is the caller's implied method, else fast
    when its model is installed."""
    for installed in (True, False):
        monkeypatch.setattr(st, "fast_available", lambda: installed)
        assert st.resolve_method("auto") == ("fast" if installed else "optimize")
        assert st.resolve_method("auto", "optimize") == "optimize"
        assert st.resolve_method("optimize") == "optimize" and st.resolve_method("fast", "optimize") == "fast"
    with pytest.raises(st.StyleTransferError, match="method must be one of auto, optimize, fast"):
        st.resolve_method("quick")
