"""Style tuning of a fast model's decoders (tiny networks: 1/16-width encoder and loss network,
the tiny four-level model file of conftest, 32 px crops)."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import cli
from painterly.encoders import VGG19Encoder
from painterly.errors import StyleTransferError
from painterly.stylizers.fast import FastOptions, FastStylizer
from painterly.stylizers.fast_model import read_model
from painterly.training.tune import HELD_OUT_STYLES, TuneConfig, Tuner, cascade


@pytest.fixture
def data(tmp_path):
    """4 smooth 'photos'; 3 striped 'paintings' to train on and 2 held out (benchmark names)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:56]
    (tmp_path / "content").mkdir()
    (tmp_path / "style").mkdir()
    for i in range(4):
        img = np.stack([np.sin(xx / (9 + i + c) + yy / (11 + c)) * 0.3 + 0.5 for c in range(3)], -1)
        Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "content" / f"photo{i}.png")
    names = ["train0", "train1", "train2", HELD_OUT_STYLES[0], HELD_OUT_STYLES[-1]]
    for i, name in enumerate(names):
        img = (np.sin(xx / (1.5 + i)) > 0)[..., None] * rng.random(3) + rng.random((48, 56, 3)) * 0.3
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "style" / f"{name}.png")
    return tmp_path


def loss_net() -> VGG19Encoder:
    torch.manual_seed(5)
    return VGG19Encoder(width_divisor=16)


def config(data, **kw):
    base = dict(content_dir=str(data / "content"), style_dir=str(data / "style"), out_dir=str(data / "run"),
                steps=30, batch_size=2, crop=32, lr=2e-3, style_weight=5.0, ramp_steps=0, identity_weight=0.5,
                val_pairs=2, checkpoint_every=10, log_every=10)
    base.update(kw)
    return TuneConfig(**base)


def tuner(data, tiny_model_file, **kw) -> Tuner:
    return Tuner(config(data, model=str(tiny_model_file), **kw), loss_net=loss_net())


def _objective(parts: dict, w: float = 5.0) -> float:
    return parts["content"] + w * parts["style"] + 0.5 * parts["identity"]


def test_tuning_lowers_its_objective_and_logs_the_held_out_errors(data, tiny_model_file):
    t = tuner(data, tiny_model_file)
    g = torch.Generator().manual_seed(99)
    batch = t.photos.sample(4, g), t.paintings.sample(4, g)  # training paintings, fixed crops
    with torch.no_grad():
        before = {k: float(v) for k, v in t.losses(*batch).items() if k != "output"}
    t.fit(progress=False)
    with torch.no_grad():
        after = {k: float(v) for k, v in t.losses(*batch).items() if k != "output"}
    assert _objective(after) < 0.8 * _objective(before), (before, after)
    assert after["style"] < 0.8 * before["style"], (before, after)
    rows = list(csv.DictReader(open(data / "run" / "metrics.csv")))
    assert [r["step"] for r in rows] == ["0", "10", "20", "30"]
    assert all(float(rows[-1][k]) >= 0 for k in ("val_content", "val_style", "content", "style", "identity"))


def test_held_out_paintings_are_never_trained_on(data, tiny_model_file):
    t = tuner(data, tiny_model_file)
    assert len(t.paintings) == 3 and sorted(t.paintings.excluded) == sorted([HELD_OUT_STYLES[0], HELD_OUT_STYLES[-1]])
    # validation pairs use the held-out paintings that are not the benchmark's
    with pytest.raises(StyleTransferError, match="held-out paintings"):
        tuner(data, tiny_model_file, hold_out="nothing_like_these", out_dir=str(data / "run2"))


def test_the_cascade_is_the_stylizer(tiny_model_file, content_image, style_image):
    """What is tuned is what runs: the differentiable cascade on the mirrored margin FastStylizer
    adds gives FastStylizer's picture."""
    model = read_model(tiny_model_file)
    stylizer = FastStylizer(model.encoder, model.decoders)
    content = content_image[..., :48, :40]  # + 2 x 16 px margin: multiples of 8, as the stylizer pads
    padded = torch.nn.functional.pad(content, (16, 16, 16, 16), mode="reflect")
    for transform in ("adain", "mixed"):
        ref = stylizer(content, [style_image], FastOptions(transform=transform))
        ours = cascade(model.encoder, model.decoders, padded, style_image, transform, amp=False)[..., 16:64, 16:56]
        assert ours.shape == ref.shape == content.shape
        assert (ours - ref).abs().max() < 1e-4, transform


def test_the_tuned_model_file_loads_stylizes_and_exports(data, tiny_model_file, tmp_path, monkeypatch, content_image,
                                                         style_image):
    from painterly import export

    pytest.importorskip("onnxruntime")
    t = tuner(data, tiny_model_file, steps=10)
    t.fit(progress=False)
    path = data / "run" / "model.safetensors"
    model = read_model(path)
    assert model.encoder is not None and sorted(model.decoders) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    tuned = {lv: d.state_dict() for lv, d in t.decoders.items()}
    for lv, d in model.decoders.items():  # what was trained (fp16 in the file)
        for k, v in d.state_dict().items():
            assert torch.allclose(v, tuned[lv][k].float(), atol=2e-3, rtol=2e-3)
    original = read_model(tiny_model_file).decoders["relu4_1"].state_dict()
    assert any(not torch.allclose(v, original[k]) for k, v in model.decoders["relu4_1"].state_dict().items())
    opts = FastOptions(alpha=0.8)
    ref = FastStylizer.from_model(str(path), "cpu")(content_image, [style_image], opts)
    assert ref.shape == content_image.shape and torch.isfinite(ref).all()
    monkeypatch.setenv(export.CACHE_ENV, str(tmp_path / "cache"))
    ours = FastStylizer.from_model(str(path), backend="onnxruntime", threads=1)(content_image, [style_image], opts)
    assert (ours - ref).abs().max() < 1e-3
    result = export.export_onnx(tmp_path / "app", str(path))
    assert (result.folder / "stylizer.onnx").is_file()


@pytest.mark.parametrize("gan, temporal", [(0.0, 0.0), (0.1, 0.5)])
def test_resume_continues_exactly(data, tiny_model_file, gan, temporal):
    kw = dict(steps=6, checkpoint_every=3, gan_weight=gan, temporal_weight=temporal)
    whole = tuner(data, tiny_model_file, out_dir=str(data / "whole"), **kw)
    whole.fit(progress=False)
    first = tuner(data, tiny_model_file, out_dir=str(data / "split"), **{**kw, "steps": 3})
    first.fit(progress=False)
    again = Tuner(config(data, model=str(tiny_model_file), out_dir=str(data / "split"), **kw),
                  loss_net=loss_net(), resume=True)
    assert again.step == 3
    again.fit(progress=False)
    for lv, d in whole.decoders.items():
        for k, v in d.state_dict().items():
            assert torch.equal(v, again.decoders[lv].state_dict()[k]), (lv, k)
    if gan:
        for k, v in whole.disc.state_dict().items():
            assert torch.equal(v, again.disc.state_dict()[k]), k
    with pytest.raises(StyleTransferError, match="exists: pass --resume"):
        tuner(data, tiny_model_file, out_dir=str(data / "whole"))
    with pytest.raises(StyleTransferError, match="--transform adain"):
        Tuner(config(data, model=str(tiny_model_file), transform="wct", out_dir=str(data / "whole")),
              loss_net=loss_net(), resume=True)


def test_the_adversarial_option_trains_a_discriminator(data, tiny_model_file):
    t = tuner(data, tiny_model_file, steps=4, gan_weight=0.1)
    d0 = {k: v.clone() for k, v in t.disc.state_dict().items()}
    parts = t.train_step()
    assert {"adv", "disc", "content", "style", "identity"} <= set(parts) and parts["disc"] >= 0
    assert any(not torch.equal(v, d0[k]) for k, v in t.disc.state_dict().items())
    assert "val_adv" in t.validate()
    with pytest.raises(StyleTransferError, match="no discriminator"):
        t0 = tuner(data, tiny_model_file, steps=1, out_dir=str(data / "nogan"))
        t0.fit(progress=False)
        Tuner(config(data, model=str(tiny_model_file), steps=2, gan_weight=0.1, out_dir=str(data / "nogan")),
              loss_net=loss_net(), resume=True)


def test_cli_tune_bad_options_are_one_line_errors(data, tiny_model_file, capsys):
    base = ["tune", "--content", str(data / "content"), "--style", str(data / "style"), "--out", str(data / "r")]
    for extra, needle, code in (([ "--model", str(data / "nope.safetensors")], "no such file", 1),
                                (["--crop", "30"], "multiple of 8", 2),
                                (["--transform", "lst"], "--transform must be one of", 2)):
        assert cli.main(base + extra) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("painterly: error: ") and needle in err[0], err


def test_the_stability_loss_falls_with_tuning(data, tiny_model_file):
    """The stability term compares the picture of a moved photo with the moved picture; the tiny
    model is far from equivariant to small camera motions, and tuning with the term lowers it."""
    t = tuner(data, tiny_model_file, steps=20, temporal_weight=5.0, style_weight=0.5)
    g = torch.Generator().manual_seed(3)
    content, style = t.photos.sample(2, g), t.paintings.sample(2, g)

    def stability() -> float:
        with torch.no_grad():
            y = cascade(t.encoder, t.decoders, content, style, "adain", amp=False)
            return float(t.motion_error(content, style, y, torch.Generator().manual_seed(0)))

    before = stability()
    assert before > 1e-3
    t.fit(progress=False)
    after = stability()
    assert after < 0.9 * before, (before, after)
    assert "temporal" in t.train_step()


def test_tuning_in_bf16_as_a_bf16_cpu_runs_it(data, tiny_model_file, bf16):
    """The bf16 autocast path (forced, so an AVX2 machine checks it too): finite losses, the
    decoders stay float32, the model file it writes loads and stylizes."""
    t = tuner(data, tiny_model_file, steps=3, gan_weight=0.1, temporal_weight=0.5)
    t.fit(progress=False)
    parts = t.train_step()
    assert all(torch.isfinite(torch.tensor(v)) for v in parts.values()), parts
    assert all(p.dtype == torch.float32 for d in t.decoders.values() for p in d.parameters())
    out = FastStylizer.from_model(str(data / "run" / "model.safetensors"), "cpu")(
        torch.rand(1, 3, 40, 48), [torch.rand(1, 3, 32, 32)], FastOptions())
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
