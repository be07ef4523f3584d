"""Feed-forward AdaIN stylizer: tiling, alpha, style interpolation, masks, colour, errors."""
import pytest
import torch

from painterly.encoders import VGG19Encoder
from painterly.errors import StyleTransferError
from painterly.image import rgb_to_yiq
from painterly.models import Decoder, adain
from painterly.stylizers.fast import (
    FastOptions,
    FastStylizer,
    _tiles,
    decode_tiled,
    default_model_available,
    encode_tiled,
    stylize_fast,
    target_features,
)
from painterly.losses import mean_std


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    enc = VGG19Encoder(width_divisor=16)
    dec = Decoder(in_channels=32, width=0.125, input_scale=1.0).eval()
    with torch.no_grad():  # a random decoder outputs ~0, which the final clamp would flatten
        dec.net[-1].bias.fill_(0.5)
        dec.net[-1].weight.mul_(20.0)
    return enc, dec


def run(content, styles, nets, **kw):
    enc, dec = nets
    return stylize_fast(content, styles, FastOptions(device="cpu", **kw), encoder=enc, decoder=dec)


@pytest.mark.parametrize("length,tile,halo,step", [(100, 40, 8, 1), (257, 64, 16, 8), (30, 64, 8, 1), (512, 128, 64, 8)])
def test_tiles_cover_each_position_once(length, tile, halo, step):
    covered = torch.zeros(length, dtype=torch.int64)
    for start, stop, k0, k1 in _tiles(length, tile, halo, step):
        assert 0 <= start <= k0 < k1 <= stop <= length
        assert start % step == 0
        covered[k0:k1] += 1
    assert bool((covered == 1).all())


def test_tiled_encoder_and_decoder_equal_whole_image(nets):
    enc, dec = nets
    x = torch.rand(1, 3, 200, 264)
    with torch.no_grad():
        whole = enc(x, ["relu4_1"])["relu4_1"]
        tiled = encode_tiled(enc, x, 128)
        torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(decode_tiled(dec, whole, 128), dec(whole), atol=1e-6, rtol=1e-5)


def test_tiled_stylization_has_no_seams(nets):
    content, style = torch.rand(1, 3, 200, 264), torch.rand(1, 3, 64, 64)
    whole = run(content, [style], nets, tile=4096)
    tiled = run(content, [style], nets, tile=128)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_output_keeps_size_even_when_not_a_multiple_of_8(nets):
    out = run(torch.rand(1, 3, 45, 61), [torch.rand(1, 3, 40, 40)], nets)
    assert out.shape == (1, 3, 45, 61) and out.min() >= 0 and out.max() <= 1


def test_alpha_zero_decodes_the_content_features(nets):
    enc, dec = nets
    content = torch.rand(1, 3, 48, 64)
    with torch.no_grad():  # the photo is mirrored by a 16 px margin all round, then cropped back
        padded = torch.nn.functional.pad(content, (16, 16, 16, 16), mode="reflect")
        expected = dec(enc(padded, ["relu4_1"])["relu4_1"]).clamp(0, 1)[..., 16:64, 16:80]
    torch.testing.assert_close(run(content, [torch.rand(1, 3, 32, 32)], nets, alpha=0.0), expected)


@pytest.mark.parametrize("h,w,margin,expected", [(48, 64, 16, (80, 96)), (50, 61, 16, (88, 96)), (12, 40, 16, (16, 40))])
def test_margin_and_padding_arithmetic(h, w, margin, expected):
    from painterly.stylizers.fast import _with_margin

    image = torch.rand(1, 3, h, w)
    x, size, m = _with_margin(image, margin)
    assert tuple(x.shape[-2:]) == expected and size == (h, w)
    assert torch.equal(x[..., m: m + h, m: m + w], image)  # the picture sits inside the margin


def test_style_weights_interpolate_and_one_hot_equals_single_style(nets):
    content, s1, s2 = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32) * 0.3
    single = run(content, [s1], nets)
    torch.testing.assert_close(run(content, [s1, s2], nets, style_weights=[1.0, 0.0]), single)
    assert not torch.allclose(run(content, [s1, s2], nets, style_weights=[0.5, 0.5]), single)


def test_target_features_blend_hand_computed():
    f_c = torch.randn(1, 4, 6, 6)
    s1, s2 = torch.randn(1, 4, 5, 5) + 3, torch.randn(1, 4, 5, 5) * 2
    stats = [mean_std(s1), mean_std(s2)]
    t = target_features(f_c, stats, [0.25, 0.75], None, 1.0)
    torch.testing.assert_close(t, 0.25 * adain(f_c, s1) + 0.75 * adain(f_c, s2))
    t = target_features(f_c, stats, [0.25, 0.75], None, 0.4)
    torch.testing.assert_close(t, 0.4 * (0.25 * adain(f_c, s1) + 0.75 * adain(f_c, s2)) + 0.6 * f_c)


def test_masks_put_each_style_in_its_region():
    f_c = torch.randn(1, 4, 8, 8)
    s1, s2 = torch.randn(1, 4, 5, 5) + 3, torch.randn(1, 4, 5, 5) * 2
    top = torch.zeros(1, 1, 8, 8)
    top[..., :4, :] = 1
    t = target_features(f_c, [mean_std(s1), mean_std(s2)], [0.5, 0.5], [top, 1 - top], 1.0)
    torch.testing.assert_close(t[..., :4, :], adain(f_c, s1)[..., :4, :])
    torch.testing.assert_close(t[..., 4:, :], adain(f_c, s2)[..., 4:, :])
    # a region no mask covers keeps the content features
    t = target_features(f_c, [mean_std(s1)], [1.0], [top], 1.0)
    torch.testing.assert_close(t[..., 4:, :], f_c[..., 4:, :])


def test_masked_stylization_runs_at_image_resolution(nets):
    content = torch.rand(1, 3, 64, 80)
    mask = torch.zeros(1, 1, 64, 80)
    mask[..., :, :40] = 1
    out = run(content, [torch.rand(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)], nets, masks=[mask, 1 - mask])
    assert out.shape == content.shape


def test_preserve_color_luminance_keeps_content_chroma(nets):
    content = torch.rand(1, 3, 48, 48) * 0.4 + 0.3
    style = torch.rand(1, 3, 32, 32)
    kept = run(content, [style], nets, preserve_color="luminance")
    plain = run(content, [style], nets)
    chroma = lambda x: rgb_to_yiq(x)[:, 1:]  # noqa: E731
    # luminance from the stylization, chroma from the content (up to the final clamp to [0, 1])
    assert (chroma(kept) - chroma(content)).abs().mean() < 0.25 * (chroma(plain) - chroma(content)).abs().mean()
    assert (rgb_to_yiq(kept)[:, :1] - rgb_to_yiq(plain)[:, :1]).abs().mean() < 0.02


def test_preserve_color_histogram_runs(nets):
    out = run(torch.rand(1, 3, 48, 48), [torch.rand(1, 3, 32, 32)], nets, preserve_color="histogram")
    assert out.shape == (1, 3, 48, 48)


def test_inputs_are_not_modified(nets):
    content, style = torch.rand(1, 3, 40, 40), torch.rand(1, 3, 32, 32)
    c0, s0 = content.clone(), style.clone()
    run(content, [style], nets, preserve_color="histogram")
    assert torch.equal(content, c0) and torch.equal(style, s0)


@pytest.mark.parametrize("kw,match", [
    (dict(alpha=1.5), "alpha"), (dict(style_weights=[1.0, 2.0]), "weights"),
    (dict(style_weights=[0.0]), "not all zero"), (dict(masks=[]), "mask"),
    (dict(preserve_color="rgb"), "preserve_color"), (dict(tile=16), "tile"), (dict(backend="tf"), "backend"),
    (dict(transform="gatys"), "transform"), (dict(levels=["relu5_1"]), "levels"),
])
def test_bad_options(nets, kw, match):
    with pytest.raises(StyleTransferError, match=match):
        run(torch.rand(1, 3, 32, 32), [torch.rand(1, 3, 32, 32)], nets, **kw)


def test_no_style_is_an_error(nets):
    with pytest.raises(StyleTransferError):
        run(torch.rand(1, 3, 32, 32), [], nets)


@pytest.mark.slow
@pytest.mark.skipif(not default_model_available(), reason="this checkout has no built-in model")
def test_builtin_model_stylizes_a_small_photo():
    from skimage import data

    from painterly.image import from_array

    content = from_array(data.astronaut()[::8, ::8])
    style = from_array(data.coffee()[::8, ::8])
    out = stylize_fast(content, [style], FastOptions(device="cpu"))
    assert out.shape == content.shape
    # stylized, not a copy: the colour statistics move towards the style's
    d_before = (mean_std(content)[0] - mean_std(style)[0]).abs().mean()
    d_after = (mean_std(out)[0] - mean_std(style)[0]).abs().mean()
    assert d_after < d_before


def test_style_statistics_are_cached_by_content_per_stylizer(nets):
    from painterly.stylizers.fast import FastStylizer

    enc, dec = nets
    st = FastStylizer(enc, dec)
    style = torch.rand(1, 3, 32, 32)
    first = st.style_statistics(style)
    assert st.style_statistics(style.clone()) is first  # same pixels: served from the cache
    other = st.style_statistics(style * 0.5)
    assert other is not first and not torch.allclose(other[0], first[0])
    assert len(st._stats) == 2
    assert FastStylizer(enc, dec).style_statistics(style) is not first  # each stylizer has its own


# ----- WCT, several levels, model files --------------------------------------------------------
def _level_decoders(enc):
    from painterly.encoders.vgg import layer_channels

    torch.manual_seed(3)
    decs = {}
    for level in ("relu4_1", "relu2_1", "relu1_1"):
        d = Decoder(layer_channels(level, enc.width_divisor), 0.125, level=level).eval()
        with torch.no_grad():
            d.net[-1].bias.fill_(0.5)
        decs[level] = d
    return decs


def test_levels_run_deepest_first_and_each_changes_the_image(nets):
    enc, _ = nets
    decs = _level_decoders(enc)
    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32)
    seen = []
    out = stylize_fast(content, [style], FastOptions(device="cpu"), encoder=enc, decoder=decs,
                       progress=lambda done, total: seen.append((done, total)))
    assert out.shape == content.shape and seen == [(1, 3), (2, 3), (3, 3)]
    only_deep = stylize_fast(content, [style], FastOptions(device="cpu", levels=["relu4_1"]), encoder=enc, decoder=decs)
    assert not torch.allclose(out, only_deep)
    # the same levels asked in another order run in the same (deepest-first) order
    shuffled = stylize_fast(content, [style], FastOptions(device="cpu", levels=["relu1_1", "relu4_1", "relu2_1"]),
                            encoder=enc, decoder=decs)
    torch.testing.assert_close(shuffled, out)


def test_a_level_the_model_lacks_is_a_clear_error(nets):
    enc, dec = nets
    with pytest.raises(StyleTransferError, match="no decoder for relu3_1"):
        run(torch.rand(1, 3, 32, 32), [torch.rand(1, 3, 32, 32)], nets, levels=["relu3_1"])


@pytest.mark.parametrize("level", ["relu1_1", "relu2_1", "relu3_1"])
def test_shallow_levels_tile_without_seams(nets, level):
    # (whole multi-level runs are not compared: with random tiny networks, float noise of 1e-5
    # is amplified by the per-level renormalisation; each level's tiling is exact instead)
    from painterly.encoders.vgg import layer_channels

    enc, _ = nets
    dec = Decoder(layer_channels(level, enc.width_divisor), 0.125, level=level).eval()
    x = torch.rand(1, 3, 200, 264)
    with torch.no_grad():
        whole = enc(x, [level])[level]
        torch.testing.assert_close(encode_tiled(enc, x, 128, level), whole, atol=1e-4, rtol=1e-4)
        decoded = decode_tiled(dec, whole, 128)
        assert decoded.shape[-2:] == x.shape[-2:]
        torch.testing.assert_close(decoded, dec(whole), atol=1e-4, rtol=1e-4)


def test_wct_target_takes_the_style_covariance(nets):
    from painterly.stylizers.fast import style_statistics

    enc, _ = nets
    content, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64) ** 3
    with torch.no_grad():
        f_c = enc(content, ["relu4_1"])["relu4_1"]
        f_s = enc(style, ["relu4_1"])["relu4_1"]
    t = target_features(f_c, [style_statistics(enc, style, "relu4_1", "wct")], [1.0], None, 1.0, "wct")

    def cov(f):
        x = f[0].reshape(f.shape[1], -1)
        return torch.cov(x)

    assert (cov(t) - cov(f_s)).abs().mean() < 0.05 * (cov(f_c) - cov(f_s)).abs().mean()


def _write_model(path, dec, level, enc_meta=None):
    from painterly import checkpoint as ckpt

    meta = {"decoder": dec.config, "encoder": enc_meta or {"name": "vgg19", "layer": level,
                                                        "normalization": "caffe", "pooling": "max", "width_divisor": 16}}
    return ckpt.atomic_save({f"decoder.{k}": v for k, v in dec.state_dict().items()}, path, meta)


def test_bundle_round_trip(nets, tmp_path):
    from painterly.stylizers.fast import read_model, save_bundle

    enc, _ = nets
    decs = _level_decoders(enc)
    files = [_write_model(tmp_path / f"{lv}.safetensors", d, lv) for lv, d in decs.items()]
    bundle = save_bundle(files, tmp_path / "bundle.safetensors", half=False)
    model = read_model(str(bundle))
    assert sorted(model.decoders) == sorted(decs) and model.settings["width_divisor"] == 16
    assert model.encoder is None  # no student in it: it runs on the (here tiny) VGG19
    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32)
    a = stylize_fast(content, [style], FastOptions(device="cpu", model=str(bundle)), encoder=enc)
    b = stylize_fast(content, [style], FastOptions(device="cpu"), encoder=enc, decoder=decs)
    torch.testing.assert_close(a, b)
    half = save_bundle(files, tmp_path / "half.safetensors")
    assert half.stat().st_size < 0.6 * bundle.stat().st_size


def test_bundle_refuses_models_of_different_encoders(nets, tmp_path):
    from painterly.stylizers.fast import save_bundle

    enc, _ = nets
    decs = _level_decoders(enc)
    a = _write_model(tmp_path / "a.safetensors", decs["relu4_1"], "relu4_1")
    b = _write_model(tmp_path / "b.safetensors", decs["relu2_1"], "relu2_1",
                     {"name": "vgg19", "normalization": "caffe", "pooling": "avg", "width_divisor": 16})
    with pytest.raises(StyleTransferError, match="encoder"):
        save_bundle([a, b], tmp_path / "bundle.safetensors")


def test_a_rewritten_model_file_is_read_again(nets, tmp_path):
    enc, _ = nets
    decs = _level_decoders(enc)
    path = tmp_path / "m.safetensors"
    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32)
    _write_model(path, decs["relu2_1"], "relu2_1")
    first = stylize_fast(content, [style], FastOptions(device="cpu", model=str(path)), encoder=enc)
    with torch.no_grad():
        decs["relu2_1"].net[-1].bias.fill_(0.1)
    _write_model(path, decs["relu2_1"], "relu2_1")
    second = stylize_fast(content, [style], FastOptions(device="cpu", model=str(path)), encoder=enc)
    assert not torch.allclose(first, second)


def test_a_model_of_another_encoder_is_refused(nets, tmp_path):
    enc, _ = nets
    decs = _level_decoders(enc)
    path = _write_model(tmp_path / "m.safetensors", decs["relu2_1"], "relu2_1",
                        {"name": "vgg19", "normalization": "torchvision", "pooling": "max", "width_divisor": 16})
    with pytest.raises(StyleTransferError, match="normalization"):
        stylize_fast(torch.rand(1, 3, 32, 32), [torch.rand(1, 3, 32, 32)],
                     FastOptions(device="cpu", model=str(path)), encoder=enc)


def test_importing_the_fast_stylizer_does_not_import_the_trainer():
    import subprocess
    import sys

    code = ("import sys, painterly.stylizers.fast; "
            "print('painterly.training' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("transform", ["wct", "adain"])
def test_blended_affine_map_equals_blending_the_transformed_features(transform):
    from painterly.models.wct import wct_style_stats
    from painterly.stylizers.fast import transform_features

    torch.manual_seed(0)
    f_c = torch.rand(1, 6, 9, 11) * 5
    styles = [torch.rand(1, 6, 8, 8) * 3 + 1, torch.rand(1, 6, 8, 8) ** 2]
    stats = [mean_std(s) if transform == "adain" else wct_style_stats(s) for s in styles]
    got = target_features(f_c, stats, [0.3, 0.7], None, 0.6, transform)
    expected = 0.6 * (0.3 * transform_features(f_c, stats[0], transform)
                      + 0.7 * transform_features(f_c, stats[1], transform)) + 0.4 * f_c
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


# ----- bf16 autocast where the CPU has it -------------------------------------------------------
def test_bf16_autocast_only_where_it_pays_and_the_output_stays_float32(tiny_encoder, tiny_levels, monkeypatch):
    import painterly.device as device_mod

    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32)
    seen = []
    real = tiny_levels["relu1_1"].forward

    def spy(features):
        seen.append(features.dtype)
        return real(features)

    monkeypatch.setattr(tiny_levels["relu1_1"], "forward", spy)

    def go(**kw):
        return stylize_fast(content, [style], FastOptions(device="cpu", **kw), encoder=tiny_encoder,
                            decoder=tiny_levels)

    monkeypatch.setenv("PAINTERLY_BF16", "auto")  # detection decides
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: False)  # an AVX2 CPU: plain float32
    ref = go()
    assert seen == [torch.float32]
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)  # AVX512-BF16 / AMX
    out = go()
    assert seen[-1] == torch.bfloat16 and out.dtype == torch.float32 and out.shape == ref.shape
    assert (out - ref).abs().mean() < 0.02  # bf16's 8-bit mantissa, four levels of it
    assert not torch.equal(out, ref)
    torch.testing.assert_close(go(amp=False), ref)  # --no-amp: float32 even there
    assert seen[-1] == torch.float32
    monkeypatch.setenv("PAINTERLY_BF16", "off")  # the switch beats the detection both ways
    torch.testing.assert_close(go(), ref)
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setenv("PAINTERLY_BF16", "on")
    torch.testing.assert_close(go(), out)
    assert seen[-1] == torch.bfloat16


def test_bf16_switch_values(monkeypatch):
    import painterly.device as device_mod

    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    for value, want in (("on", True), ("1", True), ("OFF", False), ("0", False), ("auto", True), ("", True)):
        monkeypatch.setenv("PAINTERLY_BF16", value)
        assert device_mod.cpu_bf16_enabled() is want, value
    monkeypatch.delenv("PAINTERLY_BF16")
    assert device_mod.cpu_bf16_enabled() is True
    monkeypatch.setenv("PAINTERLY_BF16", "yes please")
    with pytest.raises(ValueError, match="PAINTERLY_BF16 must be auto, on or off"):
        device_mod.cpu_bf16_enabled()


def test_bf16_tiled_stylization_stays_close_to_whole_image(nets, bf16):
    """bf16 (forced, as a bf16 CPU runs it): tiles agree with the whole image within bf16's
    rounding (0.0017 was seen on an AVX512-BF16 CPU), and both stay near float32."""
    g = torch.Generator().manual_seed(5)
    content, style = torch.rand(1, 3, 200, 264, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    whole = run(content, [style], nets, tile=4096)
    tiled = run(content, [style], nets, tile=128)
    fp32 = run(content, [style], nets, tile=4096, amp=False)
    print("bf16 tiles vs whole: max", float((tiled - whole).abs().max()), "bf16 vs fp32: mean",
          float((whole - fp32).abs().mean()), "max", float((whole - fp32).abs().max()))
    assert (tiled - whole).abs().max() < 0.005
    assert (whole - fp32).abs().mean() < 0.01 and not torch.equal(whole, fp32)


def test_a_style_is_encoded_once_for_every_level(tiny_encoder, tiny_levels):
    from painterly.stylizers.fast import FastStylizer

    calls = []

    class Counting(torch.nn.Module):
        width_divisor = tiny_encoder.width_divisor

        def forward(self, image, layers):
            calls.append((tuple(image.shape), tuple(layers)))
            return tiny_encoder(image, layers)

    st = FastStylizer(Counting(), tiny_levels)
    style = torch.rand(1, 3, 32, 32)
    st(torch.rand(1, 3, 40, 48), [style])
    style_calls = [c for c in calls if c[0][-2:] == (32, 32)]
    assert len(style_calls) == 1 and sorted(style_calls[0][1]) == sorted(tiny_levels)
    calls.clear()
    st(torch.rand(1, 3, 40, 48), [style.clone()])  # cached: the style is not encoded again
    assert not [c for c in calls if c[0][-2:] == (32, 32)]
    # "mixed" (AdaIN deep, WCT shallow): still one pass for both kinds of statistics
    FastStylizer(Counting(), tiny_levels)(torch.rand(1, 3, 40, 48), [style], FastOptions(transform="mixed"))
    assert len([c for c in calls if c[0][-2:] == (32, 32)]) == 1


def test_mixed_transform_runs_adain_deep_and_wct_shallow(tiny_encoder, tiny_levels, monkeypatch):
    """"mixed" = AdaIN at relu4_1/relu3_1, WCT at relu2_1/relu1_1 (with WCT's statistics there)."""
    from painterly.stylizers import fast as fast_mod

    st = fast_mod.FastStylizer(tiny_encoder, tiny_levels)
    g = torch.Generator().manual_seed(2)
    content, style = torch.rand(1, 3, 40, 48, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    seen = []
    real = fast_mod.target_features

    def spy(f_c, stats, weights, masks, alpha, transform="adain"):
        seen.append((f_c.shape[1], transform, stats[0][1].ndim))  # WCT's colouring matrix is 2-D
        return real(f_c, stats, weights, masks, alpha, transform)

    monkeypatch.setattr(fast_mod, "target_features", spy)
    mixed = st(content, [style], FastOptions(transform="mixed"))
    assert seen == [(32, "adain", 4), (16, "adain", 4), (8, "wct", 2), (4, "wct", 2)]
    for other in ("adain", "wct"):
        assert not torch.equal(mixed, st(content, [style], FastOptions(transform=other)))
    with pytest.raises(StyleTransferError, match="transform must be one of adain, wct, mixed"):
        st(content, [style], FastOptions(transform="fancy"))


def test_a_model_runs_its_own_transform_unless_told_otherwise(tmp_path, tiny_model_file):
    """A tuned model names the transform its decoders learnt to paint with; options.transform=None
    runs it, an explicit one overrides it; a model naming none runs AdaIN."""
    from painterly import checkpoint as ck

    tensors, meta = ck.load(tiny_model_file)
    mixed_file = ck.atomic_save(tensors, tmp_path / "mixed.safetensors", {**meta, "transform": "mixed"})
    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32)
    plain = FastStylizer.from_model(str(tiny_model_file), "cpu")
    tuned = FastStylizer.from_model(str(mixed_file), "cpu")
    assert (plain.transform, tuned.transform) == ("adain", "mixed")
    own = tuned(content, [style], FastOptions())
    assert torch.equal(own, plain(content, [style], FastOptions(transform="mixed")))
    assert torch.equal(tuned(content, [style], FastOptions(transform="adain")), plain(content, [style], FastOptions()))
    assert not torch.equal(own, plain(content, [style], FastOptions()))
    bad = ck.atomic_save(tensors, tmp_path / "bad.safetensors", {**meta, "transform": "lst"})
    with pytest.raises(StyleTransferError, match="unknown transform 'lst'"):
        FastStylizer.from_model(str(bad), "cpu")
