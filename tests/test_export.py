"""ONNX export (tiny stand-in networks): onnxruntime must give PyTorch's numbers, for two image
sizes through one file, in fp16 too; the onnxruntime backend equals stylize_fast; the CLI's
bad inputs end in one-line errors; the onnxruntime-only example script works."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import checkpoint as ckpt
from painterly import cli, export
from painterly.models import Decoder
from painterly.models.decoder import kaiming_init
from painterly.stylizers import fast

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "onnx_stylize.py"


@pytest.fixture(scope="module")
def tiny_decoder(tiny_encoder) -> Decoder:
    """A random decoder whose output varies with its input (input scaled to unit features,
    larger last gain), so comparisons mean something."""
    torch.manual_seed(7)
    f = tiny_encoder(torch.rand(1, 3, 64, 64), ["relu4_1"])["relu4_1"]
    dec = Decoder(in_channels=32, width=0.125, input_scale=float(f.std()))
    return kaiming_init(dec, last_gain=0.5, last_bias=0.5).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_encoder, tiny_decoder) -> Path:
    out = tmp_path_factory.mktemp("export") / "tiny-onnx"
    export.export_onnx(out, encoder=tiny_encoder, decoder=tiny_decoder)
    return out


def _sessions(folder: Path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return (ort.InferenceSession(str(folder / "style_encoder.onnx"), opts, providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(folder / "stylizer.onnx"), opts, providers=["CPUExecutionProvider"]))


def _run(folder: Path, content: torch.Tensor, style: torch.Tensor, alpha: float) -> np.ndarray:
    enc, sty = _sessions(folder)
    stats = enc.run(None, {"style": style.numpy()})[0]
    return sty.run(None, {"content": content.numpy(), "statistics": stats,
                          "alpha": np.array([alpha], np.float32)})[0]


def test_export_writes_the_documented_files(exported):
    names = sorted(p.name for p in exported.iterdir())
    assert names == ["MODEL_CARD.md", "model.json", "style_encoder.onnx", "stylizer.onnx"]
    manifest = json.loads((exported / "model.json").read_text())
    assert manifest["statistics_size"] == 64 and manifest["opset"] == export.DEFAULT_OPSET
    assert manifest["transform"] == "adain" and manifest["format"] == 3
    for name, info in manifest["files"].items():
        assert (exported / name).stat().st_size == info["bytes"]
    enc, sty = _sessions(exported)
    assert [i.name for i in enc.get_inputs()] == ["style"]
    assert [i.name for i in sty.get_inputs()] == ["content", "statistics", "alpha"]
    assert sty.get_inputs()[0].shape[2:] == ["height", "width"]  # dynamic H and W
    card = (exported / "MODEL_CARD.md").read_text()
    assert "Licence" in card and "VGG19" in card and "onnxruntime" in card
    assert not list(exported.parent.glob(".*tmp"))  # no temporary folder left behind


@pytest.mark.parametrize("hw", [(48, 64), (37, 53)])  # two sizes (one not a multiple of 8), one file
def test_onnxruntime_matches_pytorch(exported, tiny_encoder, tiny_decoder, content_image, style_image, hw):
    content = torch.nn.functional.interpolate(content_image, size=hw, mode="bilinear")
    ours = _run(exported, content, style_image, 0.8)
    ref = fast.stylize_fast(content, [style_image], fast.FastOptions(alpha=0.8, device="cpu", transform="adain"),
                            encoder=tiny_encoder, decoder=tiny_decoder).numpy()
    assert ours.shape == ref.shape == (1, 3, *hw)
    assert ref.std() > 0.05  # the stand-in decoder's output does depend on its input
    assert np.abs(ours - ref).max() < 1e-4


def test_style_statistics_and_blending(exported, tiny_encoder, tiny_decoder, content_image, style_image,
                                       second_style):
    enc, sty = _sessions(exported)
    stats = enc.run(None, {"style": torch.cat([style_image, second_style]).numpy()})[0]
    assert stats.shape == (2, 64)
    mean, std = fast.style_statistics(tiny_encoder, style_image)
    assert np.abs(stats[0, :32] - mean.flatten().numpy()).max() < 1e-4
    assert np.abs(stats[0, 32:] - std.flatten().numpy()).max() < 1e-4
    # blending statistics linearly == the library's weighted blend of AdaIN targets
    blend = (0.7 * stats[0] + 0.3 * stats[1])[None]
    ours = sty.run(None, {"content": content_image.numpy(), "statistics": blend,
                          "alpha": np.array([1.0], np.float32)})[0]
    ref = fast.stylize_fast(content_image, [style_image, second_style],
                            fast.FastOptions(style_weights=[0.7, 0.3], device="cpu", transform="adain"),
                            encoder=tiny_encoder, decoder=tiny_decoder).numpy()
    assert np.abs(ours - ref).max() < 1e-4


def test_fp16_weights_halve_the_file(tmp_path, exported, tiny_encoder, tiny_decoder, content_image, style_image):
    half = export.export_onnx(tmp_path / "half", encoder=tiny_encoder, decoder=tiny_decoder, fp16=True)
    for name in export.FILES:
        ratio = half.files[name] / (exported / name).stat().st_size
        assert 0.45 < ratio < 0.65, (name, ratio)  # tiny nets: the graph itself weighs a little
    full = _run(exported, content_image, style_image, 1.0)
    ours = _run(half.folder, content_image, style_image, 1.0)
    assert np.abs(ours - full).max() < 2e-2
    assert np.abs(ours - full).mean() < 2e-3


@pytest.mark.parametrize("opset", [13, 20])
def test_other_opsets(tmp_path, tiny_encoder, tiny_decoder, content_image, style_image, opset, exported):
    out = export.export_onnx(tmp_path / "o", encoder=tiny_encoder, decoder=tiny_decoder, opset=opset).folder
    assert json.loads((out / "model.json").read_text())["opset"] == opset
    assert np.abs(_run(out, content_image, style_image, 1.0) - _run(exported, content_image, style_image, 1.0)).max() < 1e-4


def test_onnxruntime_backend_equals_stylize_fast(tmp_path, monkeypatch, tiny_encoder, tiny_decoder, style_image,
                                                 second_style):
    monkeypatch.setenv(export.CACHE_ENV, str(tmp_path / "cache"))
    content = torch.rand(1, 3, 200, 264)
    mask = torch.zeros(1, 1, 200, 264)
    mask[..., :, :120] = 1
    runner = export.OnnxStylizer(encoder=tiny_encoder, decoder=tiny_decoder, threads=1)
    for opts in (fast.FastOptions(alpha=0.6, tile=128),  # tiles: encoder and decoder in pieces
                 fast.FastOptions(masks=[mask, 1 - mask], preserve_color="luminance")):
        styles = [style_image] if opts.masks is None else [style_image, second_style]
        ours = runner(content, styles, opts)
        ref = fast.stylize_fast(content, styles, opts, encoder=tiny_encoder, decoder=tiny_decoder)
        assert ours.shape == ref.shape == (1, 3, 200, 264)
        assert (ours - ref).abs().max() < 1e-4
    assert len(list((tmp_path / "cache").iterdir())) == 1  # exported once, reused


def test_a_cut_file_in_the_backend_cache_is_exported_again(tmp_path, monkeypatch, caplog, tiny_encoder, tiny_decoder,
                                                           content_image, style_image):
    monkeypatch.setenv(export.CACHE_ENV, str(tmp_path / "cache"))
    opts = fast.FastOptions(device="cpu")
    first = export.OnnxStylizer(encoder=tiny_encoder, decoder=tiny_decoder, threads=1)
    want = first(content_image, [style_image], opts)
    [entry] = list((tmp_path / "cache" / "onnx").iterdir())
    cut = entry / "decoder_relu4_1.onnx"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # what a full disk or a kill leaves
    with caplog.at_level("WARNING", logger="painterly"):
        runner = export.OnnxStylizer(encoder=tiny_encoder, decoder=tiny_decoder, threads=1)
    assert "did not load (InvalidProtobuf); exporting it again" in caplog.text
    assert torch.equal(runner(content_image, [style_image], opts), want)
    assert list((tmp_path / "cache" / "onnx").iterdir()) == [entry]
    assert sorted(p.name for p in entry.iterdir()) == ["decoder_relu4_1.onnx", "encoder_relu4_1.onnx"]


# --- several levels (the built-in model's layout) ------------------------------------------------
@pytest.fixture(scope="module")
def exported_levels(tmp_path_factory, tiny_encoder, tiny_levels) -> Path:
    out = tmp_path_factory.mktemp("export-levels") / "four"
    export.export_onnx(out, encoder=tiny_encoder, decoder=tiny_levels)
    return out


def test_four_levels_layout_and_statistics(exported_levels, tiny_encoder, style_image, second_style):
    manifest = json.loads((exported_levels / "model.json").read_text())
    assert manifest["format"] == 3 and manifest["statistics_size"] == 2 * (32 + 16 + 8 + 4)
    assert [(d["layer"], d["channels"], d["transform"], d["offset"], d["size"]) for d in manifest["levels"]] == \
        [("relu4_1", 32, "adain", 0, 64), ("relu3_1", 16, "adain", 64, 32), ("relu2_1", 8, "adain", 96, 16),
         ("relu1_1", 4, "adain", 112, 8)]
    assert "relu4_1: [0, 64); relu3_1: [64, 96)" in (exported_levels / "MODEL_CARD.md").read_text()
    enc, _ = _sessions(exported_levels)
    stats = enc.run(None, {"style": torch.cat([style_image, second_style]).numpy()})[0]
    assert stats.shape == (2, 120)
    for d in manifest["levels"]:  # each slice is that level's AdaIN statistics, as the library computes them
        mean, std = fast.style_statistics(tiny_encoder, second_style, d["layer"], "adain")
        got = stats[1, d["offset"]: d["offset"] + d["size"]]
        assert np.abs(got[: d["channels"]] - mean.flatten().numpy()).max() < 1e-4
        assert np.abs(got[d["channels"]:] - std.flatten().numpy()).max() < 1e-4


@pytest.mark.parametrize("hw", [(48, 64), (37, 53)])
def test_four_levels_match_stylize_fast(exported_levels, tiny_encoder, tiny_levels, content_image, style_image, hw):
    content = torch.nn.functional.interpolate(content_image, size=hw, mode="bilinear")
    ours = _run(exported_levels, content, style_image, 0.8)
    ref = fast.stylize_fast(content, [style_image], fast.FastOptions(alpha=0.8, device="cpu"),
                            encoder=tiny_encoder, decoder=tiny_levels).numpy()
    one = fast.stylize_fast(content, [style_image], fast.FastOptions(alpha=0.8, device="cpu", levels=["relu4_1"]),
                            encoder=tiny_encoder, decoder=tiny_levels).numpy()
    assert ours.shape == ref.shape == (1, 3, *hw)
    assert np.abs(ref - one).mean() > 0.02  # the shallow levels do change the picture: the test can tell
    assert np.abs(ours - ref).max() < 1e-3
    assert np.abs(ours - ref).mean() < 1e-5


def test_four_levels_blend_styles_by_statistics(exported_levels, tiny_encoder, tiny_levels, content_image,
                                                style_image, second_style):
    enc, sty = _sessions(exported_levels)
    stats = enc.run(None, {"style": torch.cat([style_image, second_style]).numpy()})[0]
    ours = sty.run(None, {"content": content_image.numpy(), "statistics": (0.3 * stats[0] + 0.7 * stats[1])[None],
                          "alpha": np.array([1.0], np.float32)})[0]
    ref = fast.stylize_fast(content_image, [style_image, second_style],
                            fast.FastOptions(style_weights=[0.3, 0.7], device="cpu"),
                            encoder=tiny_encoder, decoder=tiny_levels).numpy()
    assert np.abs(ours - ref).max() < 1e-3


@pytest.fixture(scope="module")
def exported_mixed(tmp_path_factory, tiny_encoder, tiny_levels) -> Path:
    out = tmp_path_factory.mktemp("export-mixed") / "mixed"
    export.export_onnx(out, encoder=tiny_encoder, decoder=tiny_levels, transform="mixed")
    return out


def test_mixed_export_carries_wct_statistics(exported_mixed, tiny_encoder, second_style):
    """WCT levels: [mean, colouring matrix], the matrix being the library's (eigendecomposition)
    up to the Newton-Schulz iterations the graph uses."""
    manifest = json.loads((exported_mixed / "model.json").read_text())
    assert manifest["transform"] == "mixed"
    assert [(d["layer"], d["transform"], d["size"]) for d in manifest["levels"]] == \
        [("relu4_1", "adain", 64), ("relu3_1", "adain", 32), ("relu2_1", "wct", 8 + 64), ("relu1_1", "wct", 4 + 16)]
    enc, _ = _sessions(exported_mixed)
    stats = enc.run(None, {"style": second_style.numpy()})[0]
    assert stats.shape == (1, manifest["statistics_size"]) == (1, 64 + 32 + 72 + 20)
    for d in manifest["levels"][2:]:
        mean, colour = fast.style_statistics(tiny_encoder, second_style, d["layer"], "wct")
        got = stats[0, d["offset"]: d["offset"] + d["size"]]
        c = d["channels"]
        assert np.abs(got[:c] - mean.flatten().numpy()).max() < 1e-4
        assert np.abs(got[c:].reshape(c, c) - colour.numpy()).max() < 1e-3 * np.abs(colour.numpy()).max()
    assert "relu2_1 (WCT)" in (exported_mixed / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("hw", [(48, 64), (37, 53)])
def test_mixed_export_matches_stylize_fast(exported_mixed, tiny_encoder, tiny_levels, content_image, style_image,
                                           second_style, hw):
    content = torch.nn.functional.interpolate(content_image, size=hw, mode="bilinear")
    opts = fast.FastOptions(alpha=0.8, device="cpu", transform="mixed")
    ref = fast.stylize_fast(content, [style_image], opts, encoder=tiny_encoder, decoder=tiny_levels).numpy()
    adain = fast.stylize_fast(content, [style_image], fast.FastOptions(alpha=0.8, device="cpu", transform="adain"),
                              encoder=tiny_encoder, decoder=tiny_levels).numpy()
    ours = _run(exported_mixed, content, style_image, 0.8)
    assert np.abs(ref - adain).mean() > 1e-3  # WCT does change the picture: the test can tell
    assert np.abs(ours - ref).max() < 1e-3 and np.abs(ours - ref).mean() < 1e-5
    # two styles: blending the statistics (colouring matrices too) is the library's blend
    enc, sty = _sessions(exported_mixed)
    stats = enc.run(None, {"style": torch.cat([style_image, second_style]).numpy()})[0]
    ours = sty.run(None, {"content": content.numpy(), "statistics": (0.3 * stats[0] + 0.7 * stats[1])[None],
                          "alpha": np.array([1.0], np.float32)})[0]
    ref = fast.stylize_fast(content, [style_image, second_style],
                            fast.FastOptions(style_weights=[0.3, 0.7], device="cpu", transform="mixed"),
                            encoder=tiny_encoder, decoder=tiny_levels).numpy()
    assert np.abs(ours - ref).max() < 1e-3


def test_export_uses_the_models_own_transform(tmp_path, tiny_model_file):
    from painterly import checkpoint as ck

    tensors, meta = ck.load(tiny_model_file)
    mixed_file = ck.atomic_save(tensors, tmp_path / "mixed.safetensors", {**meta, "transform": "mixed"})
    out = export.export_onnx(tmp_path / "app", str(mixed_file)).folder
    assert json.loads((out / "model.json").read_text())["transform"] == "mixed"
    out = export.export_onnx(tmp_path / "app2", str(mixed_file), transform="adain").folder
    assert json.loads((out / "model.json").read_text())["transform"] == "adain"
    with pytest.raises(export.StyleTransferError, match="transform must be one of"):
        export.export_onnx(tmp_path / "app3", str(mixed_file), transform="lst")


def test_export_some_levels(tmp_path, tiny_encoder, tiny_levels, content_image, style_image):
    out = export.export_onnx(tmp_path / "two", encoder=tiny_encoder, decoder=tiny_levels,
                             levels=["relu1_1", "relu4_1"]).folder
    manifest = json.loads((out / "model.json").read_text())
    assert [d["layer"] for d in manifest["levels"]] == ["relu4_1", "relu1_1"] and manifest["statistics_size"] == 72
    ref = fast.stylize_fast(content_image, [style_image], fast.FastOptions(device="cpu", levels=["relu4_1", "relu1_1"]),
                            encoder=tiny_encoder, decoder=tiny_levels).numpy()
    assert np.abs(_run(out, content_image, style_image, 1.0) - ref).max() < 1e-3
    with pytest.raises(export.StyleTransferError, match="no decoder for relu3_1"):
        export.export_onnx(tmp_path / "bad", encoder=tiny_encoder, decoder={"relu4_1": tiny_levels["relu4_1"]},
                           levels=["relu3_1"])
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("transform", ["adain", "wct"])
def test_onnxruntime_backend_runs_every_level(tmp_path, monkeypatch, tiny_encoder, tiny_levels, style_image,
                                              transform):
    monkeypatch.setenv(export.CACHE_ENV, str(tmp_path / "cache"))
    # a fixed input: the margin under the bounds depends on the data (seed 0: mean 9e-7, 11x under)
    content = torch.rand(1, 3, 200, 264, generator=torch.Generator().manual_seed(0))
    runner = export.OnnxStylizer(encoder=tiny_encoder, decoder=tiny_levels, threads=1)
    assert sorted(runner.decoders) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    # sessions without a memory arena (with one per session, 1024^2 peaked at 12 GB instead of 1.8)
    assert not runner.decoders["relu1_1"].session.get_session_options().enable_cpu_mem_arena
    assert not runner.encoder.levels["relu4_1"].session.get_session_options().enable_cpu_mem_arena
    for opts in (fast.FastOptions(alpha=0.7, transform=transform),
                 fast.FastOptions(transform=transform, tile=128, levels=["relu3_1", "relu1_1"])):
        ours = runner(content, [style_image], opts)
        ref = fast.stylize_fast(content, [style_image], opts, encoder=tiny_encoder, decoder=tiny_levels)
        assert ours.shape == ref.shape == (1, 3, 200, 264)
        assert (ours - ref).abs().max() < 1e-3 and (ours - ref).abs().mean() < 1e-5
    assert len(list((tmp_path / "cache").iterdir())) == 1  # exported once, reused


# --- the command line ---------------------------------------------------------------------------
def _cli(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, needle, expected_code=1):
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("painterly: error: "), err
    assert needle in lines[0], err


@pytest.fixture
def model_file(tmp_path, tiny_decoder, tiny_encoder) -> Path:
    """A decoder model file as the trainer writes it, carrying its own (tiny) encoder as a slim
    model does, so the CLI runs the tiny networks with nothing patched."""
    from painterly.encoders.student import student_meta, student_tensors

    sd = {f"decoder.{k}": v for k, v in tiny_decoder.state_dict().items()}
    sd.update(student_tensors(tiny_encoder))
    return ckpt.atomic_save(sd, tmp_path / "model.safetensors",
                            {"decoder": tiny_decoder.config, "encoder": student_meta(tiny_encoder)})


def test_cli_export_and_force(model_file, tmp_path, capsys):
    out = tmp_path / "app-model"
    code, stdout, err = _cli(["export", "-o", out, "--model", model_file, "--fp16"], capsys)
    assert code == 0, err
    assert "stylizer.onnx" in stdout and (out / "stylizer.onnx").is_file()
    assert json.loads((out / "model.json").read_text())["fp16_weights"] is True
    before = (out / "stylizer.onnx").read_bytes()
    code, _, err = _cli(["export", "-o", out, "--model", model_file], capsys)
    _one_line_error(code, err, "already exists (pass --force")
    assert (out / "stylizer.onnx").read_bytes() == before  # untouched
    code, _, err = _cli(["export", "-o", out, "--model", model_file, "--force"], capsys)
    assert code == 0, err
    assert (out / "stylizer.onnx").stat().st_size > 1.5 * len(before)  # now float32
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_export_folder_and_files_get_the_usual_permissions(model_file, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        code, _, err = _cli(["export", "-o", tmp_path / "app-model", "--model", model_file], capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    assert (tmp_path / "app-model").stat().st_mode & 0o777 == 0o755  # mkdtemp alone makes 0700
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "app-model").iterdir()} == {0o644}


def test_force_replaces_only_a_previous_export(model_file, tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    code, _, err = _cli(["export", "-o", mine, "--model", model_file, "--force"], capsys)
    _one_line_error(code, err, "not a previous export (no model.json)")
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "photos"]


@pytest.mark.parametrize("name", [".", ".."])
def test_current_folder_as_output_is_a_clear_error(model_file, tmp_path, capsys, monkeypatch, name):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = _cli(["export", "-o", name, "--model", model_file, "--force"], capsys)
    _one_line_error(code, err, "give its name")
    assert list(work.iterdir()) == [] and "model.safetensors" in {p.name for p in tmp_path.iterdir()}


def test_cli_bad_inputs(model_file, tmp_path, capsys, monkeypatch):
    code, _, err = _cli(["export", "-o", tmp_path / "a", "--model", tmp_path / "missing.safetensors"], capsys)
    _one_line_error(code, err, "no such file")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    code, _, err = _cli(["export", "-o", tmp_path / "a", "--model", junk], capsys)
    _one_line_error(code, err, "not a valid safetensors file")
    code, _, err = _cli(["export", "-o", tmp_path / "a", "--model", model_file, "--opset", "9"], capsys)
    _one_line_error(code, err, "unsupported ONNX opset 9", expected_code=2)
    code, _, err = _cli(["export", "-o", tmp_path / "a.onnx", "--model", model_file], capsys)
    _one_line_error(code, err, "the export is a folder")
    code, _, err = _cli(["export", "-o", tmp_path / "no" / "such" / "x", "--model", model_file], capsys)
    _one_line_error(code, err, "does not exist")
    # /sys refuses new folders even to root, so this fails on any machine
    code, _, err = _cli(["export", "-o", "/sys/painterly-export-test", "--model", model_file], capsys)
    _one_line_error(code, err, "cannot write")
    monkeypatch.setattr(fast, "default_model_available", lambda: False)
    code, _, err = _cli(["export", "-o", tmp_path / "b"], capsys)
    _one_line_error(code, err, "no built-in fast model")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- the onnxruntime-only example ---------------------------------------------------------------
def test_example_is_the_model_cards_and_needs_no_painterly(exported):
    text = EXAMPLE.read_text()
    assert text == export.EXAMPLE
    assert text in (exported / "MODEL_CARD.md").read_text()
    assert text in (ROOT / "docs" / "onnx.md").read_text()
    imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Import)
                for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ImportFrom)}
    assert imported == {"sys", "numpy", "onnxruntime", "PIL"}
    assert len(text.splitlines()) <= 25


def test_example_script_stylizes(exported, tmp_path, tiny_encoder, tiny_decoder):
    rng = np.random.default_rng(3)
    photo = (np.kron(rng.random((6, 8, 3)), np.ones((8, 8, 1))) * 255).astype(np.uint8)  # 48x64 blocks
    style = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(style).save(tmp_path / "style.png")
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, str(EXAMPLE), str(exported), str(tmp_path / "photo.png"),
                           str(tmp_path / "style.png"), str(out), "0.9"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.asarray(Image.open(out), np.float32) / 255
    to_t = lambda a: torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]  # noqa: E731
    ref = fast.stylize_fast(to_t(photo), [to_t(style)], fast.FastOptions(alpha=0.9, device="cpu", transform="adain"),
                            encoder=tiny_encoder, decoder=tiny_decoder)[0].permute(1, 2, 0).numpy()
    assert got.shape == ref.shape == (48, 64, 3)
    assert np.abs(got - ref).max() <= 1.5 / 255


@pytest.mark.parametrize("side", [16, 17])
def test_example_script_at_the_documented_minimum_size(exported, tmp_path, side):
    assert json.loads((exported / "model.json").read_text())["min_side"] == 17
    assert "at least 17 px" in (ROOT / "docs" / "onnx.md").read_text()
    Image.fromarray(np.full((side, 40, 3), 128, np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(tmp_path / "style.png")
    proc = subprocess.run([sys.executable, str(EXAMPLE), str(exported), str(tmp_path / "photo.png"),
                           str(tmp_path / "style.png"), str(tmp_path / "out.png")], capture_output=True, text=True,
                          timeout=120)
    if side >= 17:
        assert proc.returncode == 0, proc.stderr
        assert Image.open(tmp_path / "out.png").size == (40, side)
    else:  # one line, no onnxruntime traceback
        assert proc.returncode == 1 and proc.stderr.strip().endswith("both sides must be at least 17 px"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.png").exists()


# --- WCT with Newton-Schulz (matmuls only) ------------------------------------------------------
def test_bf16_server_stays_near_the_float32_app_graph(exported, tiny_encoder, tiny_decoder, content_image,
                                                       style_image, bf16):
    """On a bf16 CPU the server's fast mode runs in bf16 while the exported graph is float32:
    the two pictures differ only by bf16's rounding (forced here, so every CPU checks it)."""
    ours = _run(exported, content_image, style_image, 1.0)
    ref = fast.stylize_fast(content_image, [style_image], fast.FastOptions(device="cpu"),
                            encoder=tiny_encoder, decoder=tiny_decoder).numpy()
    fp32 = fast.stylize_fast(content_image, [style_image], fast.FastOptions(device="cpu", amp=False),
                             encoder=tiny_encoder, decoder=tiny_decoder).numpy()
    assert np.abs(ours - fp32).max() < 1e-4  # amp=False is the graph's float32
    diff = np.abs(ours - ref)
    assert 0 < diff.mean() < 0.01 and diff.max() < 0.1, (diff.mean(), diff.max())
