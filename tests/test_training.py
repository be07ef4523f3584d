"""Trainer: loss goes down, checkpoints round-trip, resume is exact, GAN trains both networks."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer.encoders import VGG19Encoder
from styletransfer.errors import StyleTransferError
from styletransfer.stylizers.fast import FastOptions, load_decoder, stylize_fast
from styletransfer.training import TrainConfig, Trainer
from styletransfer import checkpoint as ckpt


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
        dec = load_decoder(str(path))
        out = stylize_fast(torch.rand(1, 3, 40, 48), [torch.rand(1, 3, 32, 32)],
                           FastOptions(model=str(path), device="cpu"), encoder=enc, decoder=dec)
        assert out.shape == (1, 3, 40, 48) and 0 <= out.min() and out.max() <= 1


def test_config_is_a_plain_dataclass():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {"gan_weight", "style_loss", "crop", "batch_size", "lr_decay"} <= names
