"""The slim student encoder and the models that carry one (tiny stand-ins: a 1/16-width teacher)."""
from __future__ import annotations

import pytest
import torch

from painterly import checkpoint as ckpt
from painterly.encoders import VGG19Encoder
from painterly.encoders.student import (
    fold_activation_scales, pruned_student, read_student, save_student, student_meta, student_tensors,
)
from painterly.errors import StyleTransferError
from painterly.models import Decoder
from painterly.stylizers import fast_model
from painterly.stylizers.fast import FastOptions, FastStylizer, stylize_fast

LEVELS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(3)
    return VGG19Encoder(width_divisor=8)


@pytest.fixture(scope="module")
def student(teacher):
    return pruned_student(teacher, width_divisor=2)


def test_pruned_student_keeps_the_teachers_strongest_filters(teacher, student):
    assert student.width_divisor == 16 and student.last_layer == "relu4_1"
    assert student.conv_names[-1] == "conv4_1"
    t, s = teacher.layers[0].weight, student.layers[0].weight
    top = t.abs().sum((1, 2, 3)).topk(s.shape[0]).indices.sort().values
    torch.testing.assert_close(s, t[top])  # conv1_1 sees all 3 input channels: copied as is
    with pytest.raises(ValueError, match="stops at relu4_1"):
        student(torch.rand(1, 3, 32, 32), ["relu5_1"])


def test_pruned_student_starts_close_to_the_teacher(teacher, student):
    """Through a least-squares 1x1 projection the pruned student already explains much of the
    teacher's relu1_1 (it keeps half of the filters, the strongest ones)."""
    x = torch.rand(4, 3, 32, 32)
    s, t = student(x, ["relu1_1"])["relu1_1"], teacher(x, ["relu1_1"])["relu1_1"]
    xs = torch.cat([s.permute(0, 2, 3, 1).reshape(-1, s.shape[1]), torch.ones(s.numel() // s.shape[1], 1)], 1)
    yt = t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])
    fit = xs @ torch.linalg.lstsq(xs, yt).solution
    assert float((fit - yt).pow(2).mean() / yt.pow(2).mean()) < 0.5


def test_folding_the_activation_scales_is_exact_up_to_each_levels_factor(student):
    import copy

    enc = copy.deepcopy(student)
    x = torch.rand(3, 3, 40, 40)
    before = enc(x, LEVELS)
    factors = fold_activation_scales(enc, x)
    after = enc(x, LEVELS)
    for lv in LEVELS:
        assert abs(float(after[lv].mean()) - 1.0) < 1e-4
        torch.testing.assert_close(after[lv] * factors[lv], before[lv], rtol=1e-4, atol=1e-5 * float(before[lv].abs().max()))


def test_student_file_round_trip_and_bad_files(student, tmp_path):
    path = save_student(student, tmp_path / "student.safetensors", steps=5)
    back = read_student(path)
    assert (back.width_divisor, back.last_layer) == (16, "relu4_1")
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(back(x, ["relu4_1"])["relu4_1"], student(x, ["relu4_1"])["relu4_1"])
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(StyleTransferError, match="not a valid safetensors"):
        read_student(tmp_path / "junk.safetensors")
    ckpt.atomic_save({"x": torch.zeros(1)}, tmp_path / "empty.safetensors", {})
    with pytest.raises(StyleTransferError, match="no student encoder"):
        read_student(tmp_path / "empty.safetensors")


def _slim_model(student, tmp_path, name="slim.safetensors"):
    torch.manual_seed(4)
    files = []
    for lv in ("relu4_1", "relu2_1"):
        dec = Decoder(student(torch.rand(1, 3, 32, 32), [lv])[lv].shape[1], 0.125, level=lv).eval()
        files.append(ckpt.atomic_save({f"decoder.{k}": v for k, v in dec.state_dict().items()}, tmp_path / f"{lv}.st",
                                      {"decoder": dec.config, "encoder": {"width_divisor": 16}}))
    return fast_model.save_bundle(files, tmp_path / name, half=False, student=student)


def test_a_slim_model_runs_on_its_own_student(student, tmp_path):
    path = _slim_model(student, tmp_path)
    st = FastStylizer.from_model(str(path), "cpu")
    assert st.encoder.width_divisor == 16 and st.encoder.last_layer == "relu4_1" and st.levels == ["relu4_1", "relu2_1"]
    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32)
    out = st(content, [style], FastOptions(alpha=0.7))
    same = stylize_fast(content, [style], FastOptions(alpha=0.7, model=str(path), device="cpu"))
    torch.testing.assert_close(out, same)
    explicit = FastStylizer(student, st.decoders)(content, [style], FastOptions(alpha=0.7))
    torch.testing.assert_close(out, explicit)


def test_model_and_encoder_mismatch_is_a_clear_error(student, tmp_path, tiny_encoder):
    slim = _slim_model(student, tmp_path)
    with pytest.raises(StyleTransferError, match="width_divisor=16, this encoder has 8"):
        FastStylizer.from_model(str(slim), "cpu", encoder=VGG19Encoder(width_divisor=8))
    dec = Decoder(64, 0.125).eval()  # a decoder for a 1/8-width VGG19's relu4_1, no student in the file
    full = ckpt.atomic_save({f"decoder.{k}": v for k, v in dec.state_dict().items()}, tmp_path / "full.st",
                            {"decoder": dec.config, "encoder": {"width_divisor": 8}})
    with pytest.raises(StyleTransferError, match="slim model runs on its own student"):
        FastStylizer.from_model(str(full), "cpu", encoder=student)


def test_default_model_is_the_slim_one_when_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(fast_model, "_asset", lambda name: tmp_path / name)
    assert fast_model.default_model_name() is None and not fast_model.default_model_available()
    with pytest.raises(StyleTransferError, match="no built-in fast model"):
        fast_model.resolve_model_path(None)
    (tmp_path / fast_model.BUILTIN_MODELS["large"]).write_bytes(b"x")
    assert fast_model.default_model_name() == "large"
    with pytest.raises(StyleTransferError, match="built-in model 'slim' is not installed"):
        fast_model.resolve_model_path("slim")
    (tmp_path / fast_model.BUILTIN_MODELS["slim"]).write_bytes(b"x")
    assert fast_model.default_model_name() == "slim"
    assert fast_model.resolve_model_path(None).name == fast_model.BUILTIN_MODELS["slim"]
    assert fast_model.resolve_model_path("large").name == fast_model.BUILTIN_MODELS["large"]
    with pytest.raises(StyleTransferError, match="no such model file"):
        fast_model.resolve_model_path(tmp_path / "nope.safetensors")


def test_student_tensors_and_meta_describe_the_network(student):
    t = student_tensors(student)
    assert set(t) == {f"encoder.layers.{n}.{p}" for n in student.conv_names for p in ("weight", "bias")}
    assert student_meta(student) == {"width_divisor": 16, "last_layer": "relu4_1", "pooling": "max",
                                     "normalization": "caffe"}


def test_a_file_that_is_no_model_is_a_clear_error(student, tmp_path):
    ckpt.atomic_save(student_tensors(student), tmp_path / "student-only.safetensors", {"config": {"lr": 1}})
    with pytest.raises(StyleTransferError, match="not a painterly decoder"):
        fast_model.read_model(tmp_path / "student-only.safetensors")


@pytest.mark.slow
def test_the_shipped_default_is_the_slim_model_and_large_is_one_option_away():
    """The installed package: the default fast model is the slim one (its own 1/4-width student),
    the full-width model is --model large; both stylize a small photo."""
    from skimage import data

    from painterly.image import from_array, resize

    assert fast_model.default_model_name() == "slim"
    content = resize(from_array(data.astronaut()), (64, 64))
    style = resize(from_array(data.coffee()), (64, 64))
    slim = FastStylizer.from_model(None, "cpu")
    assert slim.encoder.width_divisor == 4 and slim.levels == ["relu4_1", "relu3_1", "relu2_1", "relu1_1"]
    large = FastStylizer.from_model("large", "cpu")
    assert large.encoder.width_divisor == 1
    a, b = slim(content, [style]), large(content, [style])
    assert a.shape == b.shape == (1, 3, 64, 64)
    assert (a - content).abs().mean() > 0.05  # it did restyle the photo
    with pytest.raises(StyleTransferError, match="width_divisor=4, this encoder has 1"):
        FastStylizer.from_model("slim", "cpu", encoder=large.encoder)
