"""Trainer: loss goes down, checkpoints round-trip, resume is exact, GAN trains both networks."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.encoders import VGG19Encoder
from painterly.errors import StyleTransferError
from painterly.stylizers.fast import FastOptions, read_model, stylize_fast
from painterly.training import TrainConfig, Trainer
from painterly import checkpoint as ckpt


def tiny_encoder() -> VGG19Encoder:
    torch.manual_seed(1234)
    return VGG19Encoder(width_divisor=16)


def _write_images(folder, n, seed, kind):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:56]
    for i in range(n):
        if kind == "content":  # smooth shapes
            img = np.stack([(np.sin(xx / (4 + i) + c) * 0.5 + 0.5) for c in range(3)], -1)
            img[(yy - 24) ** 2 + (xx - 20 - i) ** 2 < 90] = rng.random(3)
        else:  # high-contrast stripes in a strong palette
            img = ((np.sin((xx + yy * (i + 1)) / 2.0) > 0)[..., None] * rng.random(3)[None, None]
                   + rng.random(3) * 0.3)
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(folder / f"{kind}{i}.png")


@pytest.fixture
def dirs(tmp_path):
    _write_images(tmp_path / "content", 4, 0, "content")
    _write_images(tmp_path / "style", 3, 1, "style")
    return tmp_path


def make_config(dirs, out="run", **kw):
    base = dict(content_dir=str(dirs / "content"), style_dir=str(dirs / "style"), out_dir=str(dirs / out),
                steps=4, batch_size=2, crop=32, lr=1e-3, decoder_width=0.125, checkpoint_every=2,
                sample_every=2, log_every=1, device="cpu", amp=False, channels_last=False)
    base.update(kw)
    return TrainConfig(**base)


def test_training_lowers_the_loss(dirs):
    trainer = Trainer(make_config(dirs, steps=60, lr=3e-3), encoder=tiny_encoder())
    fixed = (trainer._prep(trainer.content.sample(4, torch.Generator().manual_seed(5))),
             trainer._prep(trainer.style.sample(4, torch.Generator().manual_seed(6))))
    with torch.no_grad():
        before = trainer.losses(*fixed)[0]["total"].item()
    for _ in range(60):
        trainer.train_step()
    with torch.no_grad():
        after = trainer.losses(*fixed)[0]["total"].item()
    assert after < 0.7 * before, (before, after)


def test_fit_writes_checkpoint_samples_metrics_and_model(dirs):
    trainer = Trainer(make_config(dirs), encoder=tiny_encoder())
    trainer.fit(progress=False)
    run = dirs / "run"
    assert (run / "checkpoint.safetensors").is_file() and (run / "model.safetensors").is_file()
    assert (run / "config.json").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 5
    grid = Image.open(run / "samples" / "step_000004.png")
    assert grid.size == (4 * 32, 3 * 32)  # content | style | reconstruction | output, three rows
    tensors, meta = ckpt.load(run / "checkpoint.safetensors")
    assert meta["step"] == 4 and "rng.data.0" in tensors and any(k.startswith("opt.decoder.") for k in tensors)


def test_checkpoint_round_trip_restores_everything(dirs):
    a = Trainer(make_config(dirs, steps=2), encoder=tiny_encoder())
    a.fit(progress=False)
    b = Trainer(make_config(dirs, steps=2), encoder=tiny_encoder(), resume=True)
    assert b.step == 2
    for (k, v), (k2, v2) in zip(a.decoder.state_dict().items(), b.decoder.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    sa, sb = a.opt.state_dict(), b.opt.state_dict()
    for i in sa["state"]:
        for key in sa["state"][i]:
            assert torch.equal(torch.as_tensor(sa["state"][i][key]), torch.as_tensor(sb["state"][i][key]))
    assert torch.equal(a.gen.get_state(), b.gen.get_state())


@pytest.mark.parametrize("gan", [0.0, 0.1])
def test_resume_is_exact(dirs, gan):
    straight = Trainer(make_config(dirs, out="straight", steps=4, gan_weight=gan), encoder=tiny_encoder())
    straight.fit(progress=False)
    first = Trainer(make_config(dirs, out="split", steps=2, gan_weight=gan), encoder=tiny_encoder())
    first.fit(progress=False)
    del first  # "killed"
    second = Trainer(make_config(dirs, out="split", steps=4, gan_weight=gan), encoder=tiny_encoder(), resume=True)
    assert second.step == 2
    second.fit(progress=False)
    for v1, v2 in zip(straight.decoder.state_dict().values(), second.decoder.state_dict().values()):
        assert torch.equal(v1, v2)
    if gan:
        for v1, v2 in zip(straight.disc.state_dict().values(), second.disc.state_dict().values()):
            assert torch.equal(v1, v2)
    rows = (dirs / "split" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]


def test_gan_option_trains_both_networks(dirs):
    trainer = Trainer(make_config(dirs, gan_weight=0.5, steps=3), encoder=tiny_encoder())
    dec0 = [p.detach().clone() for p in trainer.decoder.parameters()]
    disc0 = [p.detach().clone() for p in trainer.disc.parameters()]
    logs = [trainer.train_step() for _ in range(3)]
    assert all("adv" in r and "disc" in r for r in logs)
    assert len({round(r["disc"], 6) for r in logs}) > 1  # the discriminator loss moves
    assert any(not torch.equal(a, b) for a, b in zip(dec0, trainer.decoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(disc0, trainer.disc.parameters()))
    # gradients of the adversarial term reach the decoder
    c = trainer._prep(trainer.content.sample(2, trainer.gen))
    s = trainer._prep(trainer.style.sample(2, trainer.gen))
    trainer.decoder.zero_grad()
    trainer.losses(c, s)[0]["adv"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.decoder.parameters())


def test_gram_style_loss_option(dirs):
    trainer = Trainer(make_config(dirs, style_loss="gram"), encoder=tiny_encoder())
    assert np.isfinite(trainer.train_step()["style"])


@pytest.mark.parametrize("field,value", [("crop", 30), ("steps", 0), ("style_loss", "l1"), ("lr", 0.0),
                                         ("gan_loss", "wgan"), ("gan_weight", -1.0)])
def test_bad_options_are_rejected(dirs, field, value):
    with pytest.raises(StyleTransferError):
        Trainer(make_config(dirs, **{field: value}), encoder=tiny_encoder())


def test_resume_refuses_a_different_gan_setting(dirs):
    Trainer(make_config(dirs, steps=2), encoder=tiny_encoder()).fit(progress=False)
    with pytest.raises(StyleTransferError, match="discriminator"):
        Trainer(make_config(dirs, steps=4, gan_weight=0.1), encoder=tiny_encoder(), resume=True)


def test_exported_model_loads_for_fast_stylization(dirs):
    trainer = Trainer(make_config(dirs), encoder=tiny_encoder())
    trainer.fit(progress=False)
    model = dirs / "run" / "model.safetensors"
    half = trainer.export_model(dirs / "half.safetensors", half=True)
    enc = tiny_encoder()
    for path in (model, half, dirs / "run" / "checkpoint.safetensors"):
        dec = read_model(str(path)).decoders["relu4_1"]
        out = stylize_fast(torch.rand(1, 3, 40, 48), [torch.rand(1, 3, 32, 32)],
                           FastOptions(model=str(path), device="cpu"), encoder=enc, decoder=dec)
        assert out.shape == (1, 3, 40, 48) and 0 <= out.min() and out.max() <= 1


def test_config_is_a_plain_dataclass():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {"gan_weight", "style_loss", "crop", "batch_size", "lr_decay"} <= names


# ----- warm-up, init, identity, resume safety ---------------------------------------------------
def test_kaiming_init_makes_the_output_depend_on_the_input():
    from painterly.models import Decoder, kaiming_init

    torch.manual_seed(0)
    a, b = torch.relu(torch.randn(2, 1, 64, 6, 6)) * 2
    default = Decoder(64, 0.25)
    spread_default = (default(a) - default(b)).abs().mean()
    k = kaiming_init(Decoder(64, 0.25))
    spread_kaiming = (k(a) - k(b)).abs().mean()
    assert spread_kaiming > 20 * spread_default
    assert abs(float(k(a).detach().mean()) - 0.45) < 0.2  # starts near mid-grey


def test_warmup_steps_train_reconstruction_then_adain(dirs):
    trainer = Trainer(make_config(dirs, steps=4, warmup_steps=2), encoder=tiny_encoder())
    trainer.fit(progress=False)
    with open(dirs / "run" / "metrics.csv") as f:
        rows = list(__import__("csv").DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["pixel"] and not rows[0]["style"]  # warm-up rows: reconstruction terms only
    assert rows[3]["style"] and rows[3]["content"] and not rows[3]["pixel"]


def test_reconstruction_training_lowers_the_pixel_loss(dirs):
    trainer = Trainer(make_config(dirs, steps=40, warmup_steps=40, lr=3e-3, level="relu2_1"), encoder=tiny_encoder())
    fixed = trainer._prep(trainer.content.sample(4, torch.Generator().manual_seed(5)))
    with torch.no_grad():
        before = trainer.reconstruction_losses(fixed)[0]["pixel"].item()
    for _ in range(40):
        trainer.train_step()
    with torch.no_grad():
        after = trainer.reconstruction_losses(fixed)[0]["pixel"].item()
    assert after < 0.7 * before, (before, after)


def test_identity_loss_is_added_in_the_adain_phase(dirs):
    trainer = Trainer(make_config(dirs, identity_weight=0.5), encoder=tiny_encoder())
    log = trainer.train_step()
    assert log["identity"] > 0
    assert log["total"] == pytest.approx(log["content"] + 10.0 * log["style"] + 0.5 * log["identity"], rel=1e-5)


def test_an_existing_run_is_not_resumed_without_asking(dirs):
    Trainer(make_config(dirs, steps=2), encoder=tiny_encoder()).fit(progress=False)
    with pytest.raises(StyleTransferError, match="--resume"):
        Trainer(make_config(dirs, steps=4), encoder=tiny_encoder())
    with pytest.raises(StyleTransferError, match="does not exist"):
        Trainer(make_config(dirs, out="other"), encoder=tiny_encoder(), resume=True)


@pytest.mark.parametrize("field,value", [("decoder_width", 0.25), ("level", "relu3_1")])
def test_resume_refuses_a_different_architecture(dirs, field, value):
    Trainer(make_config(dirs, steps=2), encoder=tiny_encoder()).fit(progress=False)
    flag = "--" + field.replace("_", "-")
    with pytest.raises(StyleTransferError, match=flag):
        Trainer(make_config(dirs, steps=4, **{field: value}), encoder=tiny_encoder(), resume=True)


def test_metrics_columns_do_not_shift_when_a_term_appears_on_resume(dirs):
    import csv

    Trainer(make_config(dirs, steps=2), encoder=tiny_encoder()).fit(progress=False)
    Trainer(make_config(dirs, steps=4, tv_weight=0.1), encoder=tiny_encoder(), resume=True).fit(progress=False)
    with open(dirs / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["tv"] == "" and float(rows[3]["tv"]) > 0
    for r in rows:  # every cell under its own header: lr is the learning rate, not a loss
        assert float(r["lr"]) == pytest.approx(1e-3, rel=0.01)


def test_the_trainer_leaves_the_callers_encoder_alone(dirs):
    enc = tiny_encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    Trainer(make_config(dirs, channels_last=True), encoder=enc).train_step()
    for k, v in enc.state_dict().items():
        assert v.is_contiguous() and torch.equal(v, before[k])


def test_amp_training_runs_on_the_tiny_encoder(dirs, bf16):
    """The bf16 path a bf16 CPU takes (forced here, so every CPU runs it): finite losses, float32
    weights."""
    trainer = Trainer(make_config(dirs, amp=True, steps=2), encoder=tiny_encoder())
    assert trainer.amp_dtype == torch.bfloat16
    trainer.fit(progress=False)
    assert trainer.step == 2
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in trainer.decoder.parameters())


def test_amp_dtype_choice(monkeypatch):
    from painterly import device as dev

    monkeypatch.setenv("PAINTERLY_BF16", "auto")  # the CPU's flags decide
    monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: False)
    assert dev.amp_dtype(torch.device("cpu")) is None  # emulated bf16 is 10-50x slower
    monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: True)
    assert dev.amp_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.amp_dtype(torch.device("cuda")) == torch.float16  # the trainer then scales the loss
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.amp_dtype(torch.device("cuda")) == torch.bfloat16


def test_a_level_decoder_model_loads_for_fast_stylization(dirs):
    trainer = Trainer(make_config(dirs, level="relu2_1", warmup_steps=4), encoder=tiny_encoder())
    trainer.fit(progress=False)
    model = dirs / "run" / "model.safetensors"
    out = stylize_fast(torch.rand(1, 3, 40, 48), [torch.rand(1, 3, 32, 32)],
                       FastOptions(model=str(model), device="cpu"), encoder=tiny_encoder())
    assert out.shape == (1, 3, 40, 48)


def test_decoders_train_on_a_student_encoder_and_the_model_carries_it(dirs):
    """``--student FILE``: the decoder inverts the slim student's features, and the model file it
    writes runs on that student by itself (no encoder given)."""
    from painterly.encoders.student import pruned_student, save_student

    student = save_student(pruned_student(tiny_encoder(), 2), dirs / "student.safetensors")
    cfg = make_config(dirs, student=str(student), level="relu3_1", warmup_steps=4)
    trainer = Trainer(cfg)
    assert trainer.encoder.width_divisor == 32 and trainer.decoder.config["in_channels"] == 8
    trainer.fit(progress=False)
    model = read_model(str(dirs / "run" / "model.safetensors"))
    assert model.encoder is not None and model.encoder.width_divisor == 32
    out = stylize_fast(torch.rand(1, 3, 40, 48), [torch.rand(1, 3, 32, 32)],
                       FastOptions(model=str(dirs / "run" / "model.safetensors"), device="cpu"))
    assert out.shape == (1, 3, 40, 48)
    with pytest.raises(StyleTransferError, match="--student"):  # a resume must use the same student
        Trainer(dataclasses.replace(cfg, student=""), resume=True)
