"""Distillation of the student encoder (tiny teacher: 1/16-width VGG19; 32 px crops)."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import cli
from painterly.encoders import VGG19Encoder
from painterly.encoders.student import read_student
from painterly.errors import StyleTransferError
from painterly.training.distill import DistillConfig, Distiller


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:56]
    for kind, n in (("content", 4), ("style", 3)):
        (tmp_path / kind).mkdir()
        for i in range(n):
            img = np.stack([np.sin(xx / (3 + i + c) + yy / (5 + c)) * 0.5 + 0.5 for c in range(3)], -1)
            img = img * rng.random(3) + rng.random((48, 56, 3)) * 0.2
            Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(tmp_path / kind / f"{i}.png")
    return tmp_path


def teacher() -> VGG19Encoder:
    torch.manual_seed(21)
    return VGG19Encoder(width_divisor=16)


def config(data, **kw):
    base = dict(content_dir=str(data / "content"), style_dir=str(data / "style"), out_dir=str(data / "run"),
                width_divisor=2, steps=30, batch_size=4, crop=32, lr=3e-3, checkpoint_every=10, log_every=10,
                val_size=4)
    base.update(kw)
    return DistillConfig(**base)


def test_the_students_error_falls(data):
    d = Distiller(config(data), teacher=teacher())
    before = d.errors()
    assert set(before) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1"}
    d.fit(progress=False)
    after = d.errors()
    assert sum(after.values()) < 0.8 * sum(before.values()), (before, after)
    rows = list(csv.DictReader(open(data / "run" / "metrics.csv")))
    assert [r["step"] for r in rows] == ["0", "10", "20", "30"] and float(rows[-1]["err_relu4_1"]) >= 0


def test_the_student_file_is_folded_and_loads(data):
    d = Distiller(config(data, steps=10), teacher=teacher())
    d.fit(progress=False)
    student = read_student(data / "run" / "student.safetensors")
    assert (student.width_divisor, student.last_layer) == (32, "relu4_1")
    feats = student(d.val, ["relu1_1", "relu4_1"])
    for lv, f in feats.items():
        assert abs(float(f.mean()) - 1.0) < 1e-3, lv  # activation scales folded
        raw = d.student(d.val, [lv])[lv]
        corr = torch.corrcoef(torch.stack([f.flatten(), raw.flatten()]))[0, 1]
        assert corr > 0.9999  # the same features up to the level's factor


def test_resume_is_exact(data):
    full = Distiller(config(data, steps=20, out_dir=str(data / "full")), teacher=teacher())
    full.fit(progress=False)
    part = Distiller(config(data, steps=10, out_dir=str(data / "part")), teacher=teacher())
    part.fit(progress=False)
    with pytest.raises(StyleTransferError, match="--resume"):
        Distiller(config(data, steps=20, out_dir=str(data / "part")), teacher=teacher())
    rest = Distiller(config(data, steps=20, out_dir=str(data / "part")), teacher=teacher(), resume=True)
    assert rest.step == 10
    rest.fit(progress=False)
    for (k, a), b in zip(full.student.state_dict().items(), rest.student.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    with pytest.raises(StyleTransferError, match="--width-divisor"):
        Distiller(config(data, steps=30, width_divisor=4, out_dir=str(data / "part")), teacher=teacher(), resume=True)


def test_cli_bad_usage(data, capsys):
    code = cli.main(["distill", "--content", str(data / "nope"), "--style", str(data / "style"), "--out", str(data / "r")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--content" in err and "no such folder" in err
    code = cli.main(["distill", "--content", str(data / "content"), "--style", str(data / "style"),
                     "--out", str(data / "r"), "--crop", "30"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--crop must be a multiple of 8" in err
