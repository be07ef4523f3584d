"""The command line, run in-process through ``main(argv)`` (and once as a real subprocess)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import painterly
from painterly import cli, plan
from painterly.cli import demo as cli_demo
from painterly.stylizers import optimize as optimize_mod


@pytest.fixture
def tiny_vgg(monkeypatch, tiny_encoder):
    """Make the stylizer use the tiny random encoder instead of loading the real VGG19."""
    monkeypatch.setattr(optimize_mod, "vgg19", lambda *a, **k: tiny_encoder)
    return tiny_encoder


@pytest.fixture
def seen_options(tiny_vgg, monkeypatch):
    """The OptimizeOptions of every stylize_optimize call the CLI makes (the calls still run)."""
    seen = []
    real = optimize_mod.stylize_optimize

    def spy(content, styles, options, *a, **k):
        seen.append(options)
        return real(content, styles, options, *a, **k)

    monkeypatch.setattr(optimize_mod, "stylize_optimize", spy)
    monkeypatch.setattr(painterly, "stylize_optimize", spy)  # the name stylize() calls
    return seen


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "photo.png"
    Image.fromarray((rng.random((40, 60, 3)) * 255).astype(np.uint8)).save(content)
    style = tmp_path / "style.jpg"
    Image.fromarray((rng.random((50, 50, 3)) * 255).astype(np.uint8)).save(style)
    return content, style


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, needle):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("painterly: error: "), err
    assert needle in lines[0], err
    assert "Traceback" not in err


def test_help_reads_well(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "stylize" in out and "demo" in out and "train" in out
    code, out, _ = run(["stylize", "--help"], capsys)
    assert code == 0
    for flag in ("--method", "--size", "--max-pixels", "--weights", "--force", "--seed", "--device",
                 "--alpha", "--mask", "--model", "--preserve-color", "--steps", "--style-weights", "examples:"):
        assert flag in out, flag
    code, out, _ = run(["train", "--help"], capsys)
    assert code == 0 and "--resume" in out and "--batch-size" in out


def test_stylize_writes_png_with_size(tiny_vgg, images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    code, stdout, err = run(["stylize", content, style, "-o", out, "--size", "32", "--steps", "3", "-q"], capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 21)
    assert "wrote" in stdout and str(out) in stdout


def test_no_overwrite_without_force_and_never_an_input(tiny_vgg, images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    code, _, err = run(["stylize", content, style, "-o", out, "--size", "32", "--steps", "2", "-q"], capsys)
    assert_one_line_error(code, err, "already exists")
    assert out.read_bytes() == b"precious"
    code, _, err = run(["stylize", content, style, "-o", out, "--size", "32", "--steps", "2", "-q", "--force"],
                       capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 21)
    before = content.read_bytes()
    code, _, err = run(["stylize", content, style, "-o", content, "--force", "--steps", "2", "-q"], capsys)
    assert_one_line_error(code, err, "input")
    assert content.read_bytes() == before


def test_alpha_is_reattached(tiny_vgg, tmp_path, images, capsys):
    _, style = images
    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (30, 1))
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    out = tmp_path / "o.png"
    code, _, err = run(["stylize", tmp_path / "logo.png", style, "-o", out, "--size", "30", "--steps", "2", "-q"],
                       capsys)
    assert code == 0, err
    back = np.asarray(Image.open(out))
    assert back.shape == (30, 30, 4) and np.array_equal(back[..., 3], rgba[..., 3])


@pytest.mark.parametrize("make_bad,needle", [
    (lambda d: d / "missing.jpg", "content {d}/missing.jpg: no such file"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "{d}/notes.txt: not an image"),
])
def test_bad_content_file(tiny_vgg, images, tmp_path, capsys, make_bad, needle):
    _, style = images
    code, _, err = run(["stylize", make_bad(tmp_path), style, "-o", tmp_path / "o.png", "-q"], capsys)
    assert_one_line_error(code, err, needle.format(d=tmp_path))
    assert not (tmp_path / "o.png").exists()


def test_a_folder_as_style_or_as_content_says_which(tiny_vgg, images, tmp_path, capsys):
    content, _ = images
    folder = tmp_path / "paintings"
    folder.mkdir()
    code, _, err = run(["stylize", content, folder, "-o", tmp_path / "o.png", "-q"], capsys)
    assert_one_line_error(code, err, f"style {folder}: is a folder, not an image")
    # a folder as CONTENT is a batch of photos: then OUT must be a folder, and it says so
    code, _, err = run(["stylize", folder, content, "-o", tmp_path / "o.png", "-q"], capsys)
    assert_one_line_error(code, err, "CONTENT is a folder, so OUT must be a folder too")
    assert not (tmp_path / "o.png").exists()


def test_truncated_and_huge_images(tiny_vgg, images, tmp_path, capsys):
    content, _ = images
    data = (tmp_path / "big.jpg")
    Image.fromarray((np.random.default_rng(1).random((300, 300, 3)) * 255).astype(np.uint8)).save(data)
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 3])
    code, _, err = run(["stylize", content, data, "-o", tmp_path / "o.png", "-q", "--steps", "2"], capsys)
    assert_one_line_error(code, err, "truncated")
    code, _, err = run(["stylize", content, content, "-o", tmp_path / "o.png", "--max-input-pixels", "100",
                        "-q"], capsys)
    assert_one_line_error(code, err, "over the limit")


@pytest.mark.parametrize("argv,needle", [
    (["--size", "0"], "--size"),
    (["--size", "big"], "--size"),
    (["--steps", "-5"], "--steps"),
    (["--method", "magic"], "--method"),
    (["--alpha", "1.5"], "--alpha"),
    (["--style-weight", "nan"], "--style-weight"),
    (["--style-weights", "1", "2"], "--style-weights"),
    (["--style-layers", "relu9_9"], "relu9_9"),
    (["--preserve-color", "sepia"], "--preserve-color"),
    (["--mask", "m.png"], "--mask"),
    (["--device", "tpu"], "device"),
    (["--weights", "nope.pth"], "--weights"),
    (["--step-decay", "0.5"], "--step-decay"),
    (["--max-work", "0"], "--max-work"),
])
def test_bad_option_values(tiny_vgg, images, tmp_path, capsys, argv, needle):
    content, style = images
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "-q", *argv], capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("flags,expected", [
    ([], dict(step_decay=4.0, max_work=9.0, style_weight=20.0)),
    (["--step-decay", "6", "--max-work", "2.5"], dict(step_decay=6.0, max_work=2.5)),
    (["--no-max-work"], dict(max_work=None)),
])
def test_schedule_flags_reach_the_stylizer(seen_options, images, tmp_path, capsys, flags, expected):
    content, style = images
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", "32", "--steps", "2",
                        "-q", *flags], capsys)
    assert code == 0, err
    assert [{name: getattr(o, name) for name in expected} for o in seen_options] == [expected]


def test_usage_errors_exit_2(capsys, tmp_path, images):
    code, _, err = run(["stylize"], capsys)
    assert_one_line_error(code, err, "required")
    assert code == 2
    code, _, err = run(["paint"], capsys)
    assert_one_line_error(code, err, "paint")
    code, _, err = run(["stylize", *images, "-o", tmp_path / "out.xyz"], capsys)
    assert_one_line_error(code, err, "unsupported output type")
    assert code == 1


def test_demo_picks_a_fresh_name(tiny_vgg, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(cli_demo.DEMO_SIZE_ENV, "40")
    code, out, err = run([], capsys)  # no arguments = the demo
    assert code == 0, err
    first = tmp_path / "painterly-demo.png"
    assert first.exists() and max(Image.open(first).size) == 40
    assert "wrote" in out and "painterly-demo.png" in out and " s" in out
    data = first.read_bytes()
    code, out, err = run(["demo", "--size", "32", "-q"], capsys)
    assert code == 0, err
    assert first.read_bytes() == data  # never overwritten
    assert max(Image.open(tmp_path / "painterly-demo-1.png").size) == 32


def test_demo_options_without_the_demo_word(tiny_vgg, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["--size", "24", "-q"], capsys)
    assert code == 0, err
    assert max(Image.open(tmp_path / "painterly-demo.png").size) == 24
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "stylize" in out  # the top-level help, not the demo's


def test_demo_runs_the_model_it_is_given(tiny_model_file, tmp_path, capsys):
    from painterly.stylizers.fast import FastOptions, FastStylizer
    from painterly.demo import content_photo, swirl_style
    from painterly.image import fit_size, load_image, resize

    out = tmp_path / "d.png"
    code, stdout, err = run(["demo", "--model", tiny_model_file, "--size", "40", "-q", "-o", out], capsys)
    assert code == 0, err
    assert "fast mode" in stdout
    photo = content_photo("astronaut")
    photo = resize(photo, fit_size(*photo.shape[-2:], size=40))
    ref = FastStylizer.from_model(str(tiny_model_file), "cpu")(photo, [swirl_style(512)], FastOptions())
    assert (load_image(out).rgb - ref).abs().max() < 2 / 255  # the tiny model's picture, as PNG
    code, _, err = run(["demo", "--model", tmp_path / "nope.safetensors", "-o", tmp_path / "e.png"], capsys)
    assert_one_line_error(code, err, "nope.safetensors")
    code, _, err = run(["demo", "--model", "slim", "--method", "optimize", "-o", tmp_path / "e.png"], capsys)
    assert_one_line_error(code, err, "--model is an option of the fast mode")
    assert not (tmp_path / "e.png").exists()


def test_demo_uses_its_gentler_style_weight(seen_options, tmp_path, capsys):
    from painterly.demo import DEMO_STYLE_WEIGHT

    code, _, err = run(["demo", "--method", "optimize", "--size", "32", "-q", "-o", tmp_path / "d.png"], capsys)
    assert code == 0, err
    assert [o.style_weight for o in seen_options] == [DEMO_STYLE_WEIGHT]
    assert DEMO_STYLE_WEIGHT < optimize_mod.OptimizeOptions().style_weight


def test_fast_method_errors_are_clean(images, tmp_path, capsys):
    content, style = images
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--method", "fast",
                        "--model", tmp_path / "nope.safetensors"], capsys)
    assert_one_line_error(code, err, "nope.safetensors")


def test_train_refuses_existing_checkpoint_without_resume(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    (tmp_path / "s").mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.safetensors").write_bytes(b"x")
    code, _, err = run(["train", "--content", tmp_path / "c", "--style", tmp_path / "s", "--out", run_dir], capsys)
    assert_one_line_error(code, err, "--resume")
    code, _, err = run(["train", "--content", tmp_path / "nope", "--style", tmp_path / "s", "--out", run_dir,
                        "--resume"], capsys)
    assert_one_line_error(code, err, "no such folder")


def test_train_flags_map_onto_trainconfig(monkeypatch, tmp_path, capsys):
    import dataclasses

    from painterly import training

    seen = {}

    class FakeTrainer:
        def __init__(self, cfg, resume=False):
            seen["cfg"], seen["resume"] = cfg, resume

        def fit(self):
            seen["fit"] = True
            return {"total": 1.0}

        def __enter__(self):
            return self

        def __exit__(self, *exc):  # Trainer.close: a torchrun run leaves its process group
            seen["closed_after_fit"] = seen.get("fit", False)

    monkeypatch.setattr(training, "Trainer", FakeTrainer)
    (tmp_path / "c").mkdir()
    (tmp_path / "s").mkdir()
    code, out, err = run(["train", "--content", tmp_path / "c", "--style", tmp_path / "s", "--out", tmp_path / "r",
                          "--steps", "7", "--batch-size", "2", "--crop", "64", "--style-loss", "gram",
                          "--no-amp", "--gan-weight", "0.1", "--max-minutes", "2.5"], capsys)
    assert code == 0, err
    cfg = seen["cfg"]
    assert isinstance(cfg, training.TrainConfig)
    assert (cfg.steps, cfg.batch_size, cfg.crop, cfg.style_loss, cfg.amp, cfg.gan_weight, cfg.max_minutes) == (
        7, 2, 64, "gram", False, 0.1, 2.5)
    assert cfg.content_dir == str(tmp_path / "c") and cfg.out_dir == str(tmp_path / "r")
    assert seen["resume"] is False and seen["closed_after_fit"]
    defaults = training.TrainConfig("", "", "")
    assert cfg.lr == defaults.lr and cfg.channels_last == defaults.channels_last
    flags = {f.name for f in dataclasses.fields(training.TrainConfig)} - {"content_dir", "style_dir", "out_dir",
                                                                           "layer_scales"}
    code, out, _ = run(["train", "--help"], capsys)
    for name in flags:
        assert "--" + name.replace("_", "-") in out, name
    code, _, err = run(["train", "--content", tmp_path / "c", "--style", tmp_path / "s", "--out", tmp_path / "r",
                        "--crop", "65"], capsys)
    assert_one_line_error(code, err, "--crop")


def test_console_script_subprocess(tmp_path):
    """The installed entry point: bad input gives one line on stderr and exit code 1."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "painterly.cli", "stylize", "missing.jpg", "x.png", "-o",
                           str(tmp_path / "o.png")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "painterly: error: content missing.jpg: no such file"


def test_folder_of_photos_in_one_call(tiny_vgg, images, tmp_path, capsys):
    _, style = images
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.jpg", "b.png"):
        Image.fromarray((rng.random((36, 44, 3)) * 255).astype(np.uint8)).save(photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (photos / "notes.txt").write_text("not an image, ignored")
    out = tmp_path / "out"
    code, stdout, err = run(["stylize", photos, style, "-o", out, "--size", "32", "--steps", "3"], capsys)
    assert code == 1  # one photo was bad: said on one line, the others were still done
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert len(err.strip().splitlines()) == 1 and "broken.jpg" in err and "Traceback" not in err
    assert "2 of 3 photos stylized" in stdout
    assert Image.open(out / "a.png").size == (32, 26)
    # a second run refuses to overwrite before doing any work ...
    (photos / "broken.jpg").unlink()
    before = (out / "a.png").read_bytes()
    code, _, err = run(["stylize", photos, style, "-o", out, "--size", "32", "--steps", "3"], capsys)
    assert_one_line_error(code, err, "already exists")
    assert (out / "a.png").read_bytes() == before
    # ... and --force redoes all
    code, _, _ = run(["stylize", photos, style, "-o", out, "--size", "32", "--steps", "3", "--force"], capsys)
    assert code == 0


def test_folder_needs_a_folder_output(tiny_vgg, images, tmp_path, capsys):
    _, style = images
    photos = tmp_path / "photos"
    photos.mkdir()
    code, _, err = run(["stylize", photos, style, "-o", tmp_path / "x.png"], capsys)
    assert_one_line_error(code, err, "OUT must be a folder")
    code, _, err = run(["stylize", photos, style, "-o", photos], capsys)
    assert_one_line_error(code, err, "another folder")
    code, _, err = run(["stylize", photos, style, "-o", tmp_path / "o"], capsys)
    assert_one_line_error(code, err, "no images")


# ----- checks before any work ---------------------------------------------------------------------

@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if the CLI starts a stylization."""
    def refuse(*a, **k):
        raise AssertionError("a stylization started")

    monkeypatch.setattr(painterly, "stylize", refuse)


def test_unwritable_outputs_are_refused_before_the_run(no_run, images, tmp_path, capsys):
    content, style = images
    code, _, err = run(["stylize", content, style, "-o", "/proc/x.png", "-q"], capsys)
    assert_one_line_error(code, err, "/proc/x.png: cannot write into folder /proc")
    assert ".tmp" not in err and "Errno" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_before_the_run(no_run, images, tmp_path, capsys):
    content, style = images
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run(["stylize", content, style, "-o", ro / "x.png", "-q"], capsys)
    finally:
        ro.chmod(0o755)
    assert_one_line_error(code, err, f"{ro / 'x.png'}: cannot write into folder {ro} (Permission denied)")
    assert list(ro.iterdir()) == []


def test_a_failed_write_names_the_output_not_the_temporary_file(tiny_vgg, images, tmp_path, capsys, monkeypatch):
    content, style = images

    def disk_full(src, dst):
        raise OSError(28, "No space left on device", str(src))

    monkeypatch.setattr(os, "replace", disk_full)
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", "32", "--steps", "2", "-q"],
                       capsys)
    assert_one_line_error(code, err, f"{tmp_path / 'o.png'}: cannot write (No space left on device)")
    assert ".tmp" not in err
    assert list(tmp_path.glob(".*")) == []  # the temporary file is gone


def test_one_photo_into_an_existing_folder(tiny_vgg, images, tmp_path, capsys):
    content, style = images
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    code, stdout, err = run(["stylize", content, style, "-o", out_dir, "--size", "32", "--steps", "2", "-q"], capsys)
    assert code == 0, err
    assert [p.name for p in out_dir.iterdir()] == ["photo.png"]
    assert Image.open(out_dir / "photo.png").size == (32, 21)
    code, _, err = run(["stylize", content, style, "-o", out_dir, "--size", "32", "--steps", "2", "-q"], capsys)
    assert_one_line_error(code, err, "photo.png: already exists")


def test_outputs_get_the_usual_permissions(tiny_vgg, images, tmp_path, capsys):
    content, style = images
    old = os.umask(0o022)
    try:
        code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", "32", "--steps", "2",
                            "-q"], capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == 0o644


# ----- memory and time estimates -------------------------------------------------------------------

def test_an_output_that_cannot_fit_is_refused_before_allocating(no_run, images, tmp_path, capsys):
    content, style = images  # 60x40: --size 100000 would be 100000 x 66667 pixels
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", "100000", "-q", "--method", "optimize"], capsys)
    assert_one_line_error(code, err, "100000x66667 with --method optimize needs about")
    assert code == 1 and "available; try --size " in err


def test_refusal_names_a_size_that_fits(no_run, images, tmp_path, capsys, monkeypatch):
    content, style = images
    monkeypatch.setattr(plan, "available_memory", lambda: 2_000_000_000)
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", "2048", "-q", "--method", "optimize"], capsys)
    assert_one_line_error(code, err, "this machine has 2.0 GB available; try --size ")
    side = int(err.split("try --size ")[1].split()[0])
    assert plan.plan_optimize(*painterly.fit_size(40, 60, size=side), painterly.OptimizeOptions()
                              ).peak_bytes <= 2e9 < plan.plan_optimize(
        *painterly.fit_size(40, 60, size=side + 64), painterly.OptimizeOptions()).peak_bytes


def test_dry_run_prints_the_plan_and_does_no_work(no_run, images, tmp_path, capsys):
    content, style = images
    code, out, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", "512", "--dry-run", "--method", "optimize"], capsys)
    assert code == 0, err
    assert "output 512x341, method optimize" in out
    assert "scales 256x170: 100 steps, 512x341: 25 steps" in out
    assert "peak memory about" in out and "time about" in out
    assert not (tmp_path / "o.png").exists()
    code, out, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", "100000", "--dry-run", "--method", "optimize"],
                         capsys)
    assert code == 0, err
    assert "would be refused: 100000x66667 with --method optimize needs about" in out


def test_fast_mode_gets_a_tile_that_fits(images, tmp_path, capsys, monkeypatch):
    content, style = images
    seen = []
    monkeypatch.setattr(painterly, "stylize", lambda c, s, **k: seen.append(k) or torch.zeros(1, 3, 8, 8))
    (tmp_path / "m.safetensors").write_bytes(b"x")
    size, tile = 4096, 512
    h, w = painterly.fit_size(40, 60, size=size)
    fits_512 = plan.plan_fast(h, w, painterly.FastOptions(tile=512)).peak_bytes
    assert plan.plan_fast(h, w, painterly.FastOptions(tile=768)).peak_bytes > fits_512
    monkeypatch.setattr(plan, "available_memory", lambda: fits_512)
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--size", size, "--method", "fast",
                        "--model", tmp_path / "m.safetensors", "-q"], capsys)
    assert code == 0, err
    assert seen[0]["method"] == "fast" and seen[0]["options"].tile == tile


# ----- exit codes of the other commands ------------------------------------------------------------

@pytest.mark.parametrize("argv,needle", [
    (["--style-loss", "bogus"], "--style-loss must be meanstd or gram"),
    (["--crop", "100"], "--crop must be a multiple of 8"),
    (["--steps", "many"], "--steps"),
])
def test_train_bad_values_are_usage_errors(tmp_path, capsys, argv, needle):
    (tmp_path / "c").mkdir()
    (tmp_path / "s").mkdir()
    code, _, err = run(["train", "--content", tmp_path / "c", "--style", tmp_path / "s", "--out", tmp_path / "r",
                        *argv], capsys)
    assert_one_line_error(code, err, needle)
    assert code == 2


@pytest.mark.parametrize("argv,needle", [
    (["--result-dir", "FILE"], "argument --result-dir: {FILE} is a file, not a folder"),
    (["--max-size", "10"], "argument --max-size: must be >= 64, got 10"),
    (["--default-size", "10"], "argument --default-size: must be >= 64"),
    (["--max-pixels", "100"], "argument --max-pixels: must be >= 4096"),
    (["--fast-model", "nope.safetensors"], "--fast-model nope.safetensors: no such file"),
])
def test_serve_bad_values_are_usage_errors(tmp_path, capsys, argv, needle):
    pytest.importorskip("fastapi")  # serve exists with the web extra
    file = tmp_path / "results.txt"
    file.write_text("x")
    argv = [str(file) if a == "FILE" else a for a in argv]
    code, _, err = run(["serve", *argv], capsys)
    assert_one_line_error(code, err, needle.format(FILE=file))
    assert code == 2


# ----- the stylize parser is generated from the options dataclasses --------------------------------

def test_every_options_field_is_a_flag(capsys):
    import dataclasses

    from painterly.clioptions import OVERRIDES
    from painterly.stylizers.fast import FastOptions

    code, out, _ = run(["stylize", "--help"], capsys)
    assert code == 0
    for cls in (painterly.OptimizeOptions, FastOptions):
        for f in dataclasses.fields(cls):
            if OVERRIDES.get(f.name, {}).get("skip"):
                continue
            flags = OVERRIDES.get(f.name, {}).get("flags", ["--" + f.name.replace("_", "-")])
            assert flags[0] in out, f"{cls.__name__}.{f.name} has no flag"
    # the flags of before the generated parser still parse
    for flag in ("--early-stop", "--no-max-work", "--mask", "--style-weights", "--preserve-color", "--seed",
                 "--weights", "--device", "--tile", "--model", "--alpha", "--dry-run"):
        assert flag in out, flag


def test_a_new_options_field_becomes_a_flag(images, tmp_path, capsys, monkeypatch):
    """A field added to FastOptions (here: brush, passes) becomes a flag with no CLI change."""
    import dataclasses

    from painterly import clioptions
    from painterly.stylizers.fast import FastOptions

    @dataclasses.dataclass
    class NewFast(FastOptions):
        brush: str = "round"
        passes: int = 1

        def validate(self, n_styles):
            super().validate(n_styles)
            if self.brush not in ("round", "flat"):
                raise painterly.StyleTransferError(f"brush must be round or flat, got {self.brush!r}")

    monkeypatch.setattr(clioptions, "option_classes", lambda: (painterly.OptimizeOptions, NewFast))
    seen = []
    monkeypatch.setattr(painterly, "stylize", lambda c, s, **k: seen.append(k) or torch.zeros(1, 3, 8, 8))
    content, style = images
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--model", model, "--brush", "flat",
                        "--passes", "3", "-q"], capsys)
    assert code == 0, err
    options = seen[0]["options"]
    assert type(options) is NewFast and (options.brush, options.passes, options.model) == ("flat", 3, str(model))
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "p.png", "--model", model, "--brush", "x"],
                       capsys)
    assert_one_line_error(code, err, "--brush must be round or flat")
    assert code == 2


@pytest.mark.parametrize("installed,flags,method,options_type", [
    (False, [], "optimize", "OptimizeOptions"),
    (True, [], "fast", "FastOptions"),
    (True, ["--steps", "5"], "optimize", "OptimizeOptions"),  # an optimize-only option picks optimize
    (False, ["--model", "MODEL"], "fast", "FastOptions"),  # a fast-only option picks fast
    (True, ["--method", "optimize"], "optimize", "OptimizeOptions"),
])
def test_auto_is_the_default_and_follows_stylize(images, tmp_path, capsys, monkeypatch, installed, flags, method,
                                                 options_type):
    monkeypatch.setattr(painterly, "fast_available", lambda: installed)
    seen = []
    monkeypatch.setattr(painterly, "stylize", lambda c, s, **k: seen.append(k) or torch.zeros(1, 3, 8, 8))
    (tmp_path / "m.safetensors").write_bytes(b"x")
    flags = [str(tmp_path / "m.safetensors") if f == "MODEL" else f for f in flags]
    content, style = images
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "-q", *flags], capsys)
    assert code == 0, err
    assert seen[0]["method"] == method and type(seen[0]["options"]).__name__ == options_type


def test_options_of_both_methods_need_a_method(images, tmp_path, capsys):
    content, style = images
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--steps", "5", "--alpha", "0.5"], capsys)
    assert_one_line_error(code, err, "--steps is an option of --method optimize and --alpha of --method fast")
    assert code == 2
    code, _, err = run(["stylize", content, style, "-o", tmp_path / "o.png", "--method", "optimize", "--tile", "256"],
                       capsys)
    assert_one_line_error(code, err, "--tile only applies to --method fast")
