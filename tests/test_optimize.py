"""Optimisation stylizer on a tiny stand-in encoder (random weights, 1/16 width, 48x64 images)."""
import dataclasses

import pytest
import torch

from painterly.errors import StyleTransferError
from painterly.image import rgb_to_yiq
from painterly.stylizers.optimize import (
    OptimizeOptions,
    _Objective,
    _resize_style,
    scale_sizes,
    step_schedule,
    stylize_optimize,
)


def opts(**kw) -> OptimizeOptions:
    base = dict(steps=[25], device="cpu", seed=0, early_stop_tol=0.0)
    base.update(kw)
    return OptimizeOptions(**base)


def objective_value(enc, content, styles, options, image, blend=None):
    styles = [_resize_style(s, content.shape[-2] * content.shape[-1]) for s in styles]  # as the stylizer does
    obj = _Objective(enc, content, styles, blend or [1.0 / len(styles)] * len(styles), options)
    with torch.no_grad():
        return float(obj(image))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loss_decreases(tiny_encoder, content_image, style_image, optimizer):
    o = opts(optimizer=optimizer, steps=[30], lr=0.05 if optimizer == "adam" else None)
    losses = []
    out = stylize_optimize(content_image, [style_image], o, callback=lambda s, t, l: losses.append(l),
                           encoder=tiny_encoder)
    assert out.shape == content_image.shape and out.device.type == "cpu"
    assert 0 <= out.min() and out.max() <= 1
    start = objective_value(tiny_encoder, content_image, [style_image], o, content_image)
    end = objective_value(tiny_encoder, content_image, [style_image], o, out)
    assert end < 0.5 * start, (start, end)
    assert losses[0] == pytest.approx(start, rel=1e-4)  # first reported loss = the content init
    assert min(losses[-5:]) < 0.5 * losses[0]


def test_noise_and_style_init(tiny_encoder, content_image, style_image):
    a = stylize_optimize(content_image, [style_image], opts(init="noise", steps=[1]), encoder=tiny_encoder)
    b = stylize_optimize(content_image, [style_image], opts(init="style", steps=[1]), encoder=tiny_encoder)
    assert a.shape == b.shape == content_image.shape
    assert not torch.allclose(a, b, atol=0.05)


def test_seed_reproducibility(tiny_encoder, content_image, style_image):
    run = lambda seed: stylize_optimize(content_image, [style_image], opts(init="noise", seed=seed, steps=[5]),
                                        encoder=tiny_encoder)  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_style_blend(tiny_encoder, content_image, style_image, second_style):
    run = lambda styles, w: stylize_optimize(content_image, styles, opts(style_weights=w, steps=[10], style_weight=1e4),
                                             encoder=tiny_encoder)  # noqa: E731
    only_first = run([style_image], None)
    weighted = run([style_image, second_style], [1.0, 0.0])
    assert torch.allclose(only_first, weighted, atol=1e-6)  # a zero weight removes a style exactly
    mixed = run([style_image, second_style], [0.5, 0.5])
    only_second = run([second_style], None)
    assert not torch.allclose(mixed, only_first, atol=1e-3)
    assert not torch.allclose(mixed, only_second, atol=1e-3)
    # weights are normalised: [2, 2] == [0.5, 0.5]
    assert torch.allclose(run([style_image, second_style], [2.0, 2.0]), mixed, atol=1e-6)


def test_blended_gram_target_is_weighted_mean(tiny_encoder, style_image, second_style, content_image):
    o = opts()
    obj = _Objective(tiny_encoder, content_image, [style_image, second_style], [0.25, 0.75], o)
    a = _Objective(tiny_encoder, content_image, [style_image], [1.0], o)
    b = _Objective(tiny_encoder, content_image, [second_style], [1.0], o)
    for layer in obj.gram_targets:
        assert torch.allclose(obj.gram_targets[layer], 0.25 * a.gram_targets[layer] + 0.75 * b.gram_targets[layer],
                              rtol=1e-5, atol=1e-6)


def test_preserve_color_luminance_keeps_content_chroma(tiny_encoder, content_image, style_image):
    out = stylize_optimize(content_image, [style_image], opts(preserve_color="luminance"), encoder=tiny_encoder)
    plain = stylize_optimize(content_image, [style_image], opts(), encoder=tiny_encoder)
    iq_c = rgb_to_yiq(content_image)[:, 1:]
    err_kept = (rgb_to_yiq(out)[:, 1:] - iq_c).abs().mean().item()
    err_plain = (rgb_to_yiq(plain)[:, 1:] - iq_c).abs().mean().item()
    assert err_kept < 0.02  # only clamping to [0, 1] may move the chroma
    assert err_kept < 0.5 * err_plain


def test_preserve_color_histogram_moves_palette_to_content(tiny_encoder, content_image, second_style):
    # starting from the style, the palette shows directly: recoloured (content's) or the style's own
    o = opts(steps=[5], init="style")
    plain = stylize_optimize(content_image, [second_style], o, encoder=tiny_encoder)
    kept = stylize_optimize(content_image, [second_style], dataclasses.replace(o, preserve_color="histogram"),
                            encoder=tiny_encoder)
    mean = lambda t: t.mean(dim=(2, 3))  # noqa: E731
    d_plain = (mean(plain) - mean(content_image)).abs().sum().item()
    d_kept = (mean(kept) - mean(content_image)).abs().sum().item()
    assert d_kept < 0.05 < d_plain


def test_scale_pyramid_and_schedule():
    o = OptimizeOptions(coarse_size=64, steps=200, min_steps=20)
    sizes = scale_sizes(200, 256, o)
    assert sizes == [(50, 64), (100, 128), (200, 256)]
    assert step_schedule(len(sizes), o) == [200, 50, 20]
    assert scale_sizes(200, 256, OptimizeOptions(scales=1)) == [(200, 256)]
    assert scale_sizes(40, 40, OptimizeOptions(coarse_size=64)) == [(40, 40)]
    assert step_schedule(3, dataclasses.replace(o, step_decay=2.0)) == [200, 100, 50]
    explicit = OptimizeOptions(steps=[5, 0, 3])
    assert scale_sizes(64, 64, explicit) == [(16, 16), (32, 32), (64, 64)]
    assert scale_sizes(32, 64, explicit) == [(16, 32), (16, 32), (32, 64)]  # never below 16 px
    assert step_schedule(3, explicit) == [5, 0, 3]


def test_work_limit_lowers_the_coarse_budget_until_the_schedule_fits():
    o = OptimizeOptions(steps=100, step_decay=4.0, min_steps=3, max_work=9.0)
    px = [256 * 256, 512 * 512, 1024 * 1024]
    # 1024^2: 100, 25, 7 would be 6.55 + 6.55 + 7.34 = 20.4 megapixel-steps
    assert step_schedule(3, o, px) == [44, 11, 3]  # 2.88 + 2.88 + 3.15 = 8.91
    work = lambda steps: sum(s * p for s, p in zip(steps, px)) / 1e6  # noqa: E731
    assert work([44, 11, 3]) <= 9.0 < work([45, 12, 3])  # the largest budget that fits
    assert step_schedule(2, o, px[:2]) == [68, 17]  # 512^2: 4.46 + 4.46 = 8.91
    assert step_schedule(2, o, [128 * 128, 256 * 256]) == [100, 25]  # small outputs: untouched
    assert step_schedule(3, dataclasses.replace(o, max_work=None), px) == [100, 25, 7]
    assert step_schedule(3, o, [10 ** 8] * 3) == [3, 3, 3]  # the floor wins over the limit
    with pytest.raises(StyleTransferError, match="max_work"):
        dataclasses.replace(o, max_work=0.0).validate()
    with pytest.raises(StyleTransferError, match="step_decay"):
        dataclasses.replace(o, step_decay=0.5).validate()


def test_multiscale_runs_every_scale(tiny_encoder, content_image, style_image, tmp_path):
    o = opts(steps=[4, 3, 2], snapshot_every=1, snapshot_dir=str(tmp_path / "snaps"))
    calls = []
    content_image = torch.nn.functional.interpolate(content_image, size=(96, 128), mode="bilinear")
    out = stylize_optimize(content_image, [style_image], o, callback=lambda s, t, l: calls.append((s, t)),
                           encoder=tiny_encoder)
    assert out.shape == content_image.shape
    assert [s for s, _ in calls] == list(range(1, 10)) and all(t == 9 for _, t in calls)
    from PIL import Image

    snaps = sorted((tmp_path / "snaps").iterdir())
    assert len(snaps) == 9
    sizes = [Image.open(p).size for p in snaps]
    assert sizes[0] == (32, 24) and sizes[4] == (64, 48) and sizes[-1] == (128, 96)


def test_early_stop(tiny_encoder, content_image, style_image):
    calls = []
    o = opts(steps=[200], early_stop_tol=0.5, early_stop_patience=3)
    stylize_optimize(content_image, [style_image], o, callback=lambda s, t, l: calls.append(s),
                     encoder=tiny_encoder)
    assert len(calls) < 40  # stopped long before 200 steps
    assert calls[-1] == 200  # the progress still ends at 100%


def test_callback_can_cancel(tiny_encoder, content_image, style_image):
    class Cancelled(Exception):
        pass

    seen = []

    def cb(step, total, loss):
        seen.append(step)
        if step == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        stylize_optimize(content_image, [style_image], opts(steps=[50]), callback=cb, encoder=tiny_encoder)
    assert seen == [1, 2, 3]


def test_inputs_are_not_modified(tiny_encoder, content_image, style_image):
    c, s = content_image.clone(), style_image.clone()
    stylize_optimize(content_image, [style_image], opts(steps=[3]), encoder=tiny_encoder)
    assert torch.equal(c, content_image) and torch.equal(s, style_image)


@pytest.mark.parametrize("bad", [
    dict(optimizer="sgd"), dict(lr=-1.0), dict(steps=0), dict(steps=[0, 0]), dict(init="photo"),
    dict(style_weight=-1.0), dict(content_layers={"relu9_1": 1.0}), dict(style_layers={}),
    dict(style_weights=[1.0, 2.0]), dict(preserve_color="sepia"), dict(pooling="min"),
    dict(snapshot_every=5), dict(scales=0), dict(style_scale=0.0), dict(device="nonsense"),
])
def test_bad_options(tiny_encoder, content_image, style_image, bad):
    with pytest.raises(StyleTransferError):
        stylize_optimize(content_image, [style_image], opts(**bad), encoder=tiny_encoder)


def test_bad_images(tiny_encoder, content_image, style_image):
    with pytest.raises(StyleTransferError):
        stylize_optimize(content_image, [], opts(), encoder=tiny_encoder)
    with pytest.raises(StyleTransferError):
        stylize_optimize(content_image[0], [style_image], opts(), encoder=tiny_encoder)
    with pytest.raises(StyleTransferError, match="too small"):
        stylize_optimize(torch.rand(1, 3, 8, 8), [style_image], opts(), encoder=tiny_encoder)


@pytest.mark.slow
def test_real_weights_tiny_run(content_image, style_image):
    """The pretrained VGG19 at 64 px: two scales, the loss goes down, the result is a real image."""
    losses = []
    o = OptimizeOptions(steps=[10, 5], device="cpu", seed=0, early_stop_tol=0.0)
    out = stylize_optimize(content_image, [style_image], o, callback=lambda s, t, l: losses.append(l))
    assert out.shape == content_image.shape
    assert min(losses[:10]) < losses[0]
    assert out.std() > 0.02


def test_all_loss_weights_zero_is_refused_at_validation():
    # before: validate() passed and the run crashed in autograd (a loss with no graph)
    for weights in (dict(content_weight=0.0, style_weight=0.0, tv_weight=0.0),
                    dict(content_layers={"relu4_2": 0.0}, style_weight=0.0, tv_weight=0.0)):
        with pytest.raises(StyleTransferError, match="nothing to optimise"):
            opts(**weights).validate(1)
    opts(content_weight=0.0, style_weight=0.0, tv_weight=1.0).validate(1)  # TV alone is a (dull) objective


def test_a_seed_leaves_the_global_rng_alone(tiny_encoder, content_image, style_image):
    # web worker threads share torch's global RNG: a run must not reseed it
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    stylize_optimize(content_image, [style_image], opts(init="noise", seed=0, steps=[2]), encoder=tiny_encoder)
    assert torch.equal(torch.rand(4), expected)


def test_luminance_recolouring_is_image_transfer_luminance(tiny_encoder, content_image, style_image, monkeypatch):
    from painterly import image
    from painterly.stylizers import optimize as optimize_mod

    calls = []

    def spy(stylized, content):
        calls.append(content)
        return image.transfer_luminance(stylized, content)

    monkeypatch.setattr(optimize_mod, "transfer_luminance", spy, raising=False)
    stylize_optimize(content_image, [style_image], opts(preserve_color="luminance", steps=[2]), encoder=tiny_encoder)
    assert len(calls) == 1 and torch.equal(calls[0], content_image)  # one implementation, fed the photo


# ----- a start image of one's own (a video's warm start) -----------------------------------------

def test_init_image_is_where_the_optimisation_starts(tiny_encoder, content_image, style_image):
    init = torch.rand(content_image.shape, generator=torch.Generator().manual_seed(3))
    kept = init.clone()
    losses = []
    o = opts(steps=[4], init="noise")  # init_image wins over options.init
    out = stylize_optimize(content_image, [style_image], o, callback=lambda s, t, l: losses.append(l),
                           encoder=tiny_encoder, init_image=init)
    assert losses[0] == pytest.approx(objective_value(tiny_encoder, content_image, [style_image], o, init), rel=1e-4)
    assert losses[0] != pytest.approx(objective_value(tiny_encoder, content_image, [style_image], o, content_image),
                                      rel=1e-2)
    assert out.shape == content_image.shape and torch.equal(init, kept)  # the caller's tensor is untouched


def test_init_image_starts_the_coarsest_scale(tiny_encoder, content_image, style_image, monkeypatch):
    from painterly.stylizers import optimize as optimize_mod

    starts = []
    real = optimize_mod._optimize_scale
    monkeypatch.setattr(optimize_mod, "_optimize_scale", lambda image, *a: starts.append(image.clone()) or real(image, *a))
    init = torch.rand(content_image.shape, generator=torch.Generator().manual_seed(4))
    stylize_optimize(content_image, [style_image], opts(steps=[1, 1]), encoder=tiny_encoder, init_image=init)
    assert starts[0].shape[-2:] == (24, 32)
    assert torch.allclose(starts[0], optimize_mod.resize(init, (24, 32)).clamp(0, 1))


def test_init_image_in_luminance_mode_is_its_luminance(tiny_encoder, content_image, style_image):
    init = torch.rand(content_image.shape, generator=torch.Generator().manual_seed(5))
    losses = []
    o = opts(preserve_color="luminance", steps=[2])
    stylize_optimize(content_image, [style_image], o, callback=lambda s, t, l: losses.append(l),
                     encoder=tiny_encoder, init_image=init)
    from painterly.stylizers.optimize import _match_luminance, _to_luminance

    content_y = _to_luminance(content_image)
    style_y = _match_luminance(_to_luminance(style_image), content_y)
    assert losses[0] == pytest.approx(objective_value(tiny_encoder, content_y, [style_y], o, _to_luminance(init)),
                                      rel=1e-4)


@pytest.mark.parametrize("bad,message", [
    (lambda c: c[0], r"\(1, 3, H, W\) tensor, got \(3, 48, 64\)"),
    (lambda c: c[:, :1], r"\(1, 3, H, W\) tensor, got \(1, 1, 48, 64\)"),
    (lambda c: c.numpy(), "tensor, got ndarray"),
    (lambda c: c[..., :32], "init image is 32x48, the content 64x48: they must match"),
    (lambda c: c * 2 + 0.1, r"values must be in \[0, 1\]"),
    (lambda c: c - 0.5, r"values must be in \[0, 1\]"),
    (lambda c: torch.where(c > 0.5, torch.tensor(float("nan")), c), r"values must be in \[0, 1\]"),
    (lambda c: (c * 255).to(torch.uint8), "float tensor"),
])
def test_bad_init_images_are_refused(tiny_encoder, content_image, style_image, bad, message):
    with pytest.raises(StyleTransferError, match=message):
        stylize_optimize(content_image, [style_image], opts(steps=[1]), encoder=tiny_encoder,
                         init_image=bad(content_image))
