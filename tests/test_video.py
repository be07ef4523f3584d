"""Video: round trip (frames, fps, audio, rotation, size), trimming, temporal consistency, bad input."""
from __future__ import annotations

import io
import os
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from painterly import VideoOptions, stylize_video  # noqa: E402
from painterly.cli import main  # noqa: E402
from painterly.errors import StyleTransferError  # noqa: E402
from painterly.models import Decoder  # noqa: E402
from painterly.encoders import VGG19Encoder  # noqa: E402
from painterly.stylizers.fast import FastOptions  # noqa: E402
from painterly.video import (  # noqa: E402
    TemporalBlender, consistent_mask, parse_time, warp, warping_error,
)

RATE = 16000  # audio sample rate of the test clips
SHIFT = 2  # px per frame of the synthetic pan


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    enc = VGG19Encoder(width_divisor=16)
    # input_scale 1e-3: the tiny encoder's relu4_1 is ~0.02, which a random decoder turns into the
    # same picture for every frame (its biases win); amplified, the output follows the content
    dec = Decoder(in_channels=32, width=0.125, input_scale=1e-3).eval()
    with torch.no_grad():  # a random decoder outputs ~0, which the final clamp would flatten
        dec.net[-1].bias.fill_(0.5)
        dec.net[-1].weight.mul_(20.0)
    return enc, dec


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (h, w, 3) in [0, 1] with some detail."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 6, w // 6, generator=g)
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return img[0].permute(1, 2, 0).clamp(0, 1).numpy()


def pan_frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Frame t = texture shifted left by SHIFT * t px: flow t -> t-1 is (+SHIFT, 0) everywhere."""
    tex = _texture(h, w + SHIFT * n)
    return [tex[:, SHIFT * t: SHIFT * t + w] for t in range(n)]


def make_clip(path: Path, frames: list[np.ndarray] | None = None, n: int = 6, fps: int = 12,
              audio: bool = True, video: bool = True, rotation: int = 0) -> Path:
    """Write an H.264 (+ AAC sine) clip with PyAV."""
    frames = frames if frames is not None else pan_frames(n)
    with av.open(str(path), "w") as out:
        if video:
            vs = out.add_stream("libx264", rate=fps)
            vs.height, vs.width = frames[0].shape[:2]
            vs.pix_fmt, vs.options = "yuv420p", {"crf": "10"}
            if rotation:
                vs.set_display_rotation(rotation)
        if audio:
            aus = out.add_stream("aac", rate=RATE, layout="mono")
        if video:
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray((f * 255 + 0.5).astype(np.uint8), format="rgb24")
                vf.pts = i
                for p in vs.encode(vf):
                    out.mux(p)
        if audio:
            samples = round(RATE * len(frames) / fps)
            sig = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / RATE)).astype(np.float32)[None]
            for k in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(sig[:, k:k + 1024]), format="fltp", layout="mono")
                af.sample_rate, af.pts = RATE, k
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
        if video:
            for p in vs.encode(None):
                out.mux(p)
    return path


def read_clip(path: Path) -> dict:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        info = {"rate": vs.average_rate, "streams": sorted(s.type for s in c.streams)}
        frames = [f for f in c.decode(video=0)]
        info["frames"] = [f.to_ndarray(format="rgb24").astype(np.float32) / 255 for f in frames]
        info["rotation"] = frames[0].rotation if frames else None
        info["times"] = [float(f.time) for f in frames]
    if "audio" in info["streams"]:
        with av.open(str(path)) as c:
            info["audio_seconds"] = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].sample_rate
    return info


def run(src, out, nets, style, **kw) -> object:
    enc, dec = nets
    opts = VideoOptions(fast=FastOptions(device="cpu"), **kw)
    return stylize_video(src, [style], out, opts, encoder=enc, decoder=dec)


# ----- round trip --------------------------------------------------------------------------------

def test_frames_fps_audio_and_rotation_survive(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mp4", n=6, fps=12, rotation=90)
    result = run(src, tmp_path / "out.mp4", nets, style_image)
    assert (result.frames, result.width, result.height, result.audio) == (6, 64, 48, True)
    got, want = read_clip(tmp_path / "out.mp4"), read_clip(src)
    assert got["streams"] == ["audio", "video"]
    assert len(got["frames"]) == 6 and got["frames"][0].shape == (48, 64, 3)
    assert got["rate"] == Fraction(12)
    assert got["rotation"] == want["rotation"] == 90
    assert got["times"] == pytest.approx(want["times"], abs=1e-3)
    assert got["audio_seconds"] == pytest.approx(want["audio_seconds"], abs=1100 / RATE)
    # stylized, not copied: the output differs from the input frames
    assert np.abs(got["frames"][2] - want["frames"][2]).mean() > 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]  # no temporary left


def test_size_sets_the_longest_side_with_even_sides(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mkv", n=3, audio=False)
    result = run(src, tmp_path / "out.mkv", nets, style_image, size=40)
    assert (result.width, result.height, result.audio) == (40, 30, False)
    got = read_clip(tmp_path / "out.mkv")
    assert got["frames"][0].shape == (30, 40, 3) and got["streams"] == ["video"]


def test_no_audio_drops_the_audio(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mp4", n=3)
    run(src, tmp_path / "out.mov", nets, style_image, audio=False)
    assert read_clip(tmp_path / "out.mov")["streams"] == ["video"]


def test_trimming_keeps_the_chosen_frames_and_audio(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mp4", n=12, fps=12)  # 1 s
    result = run(src, tmp_path / "out.mp4", nets, style_image, start=0.25, duration=0.5, temporal=False)
    got = read_clip(tmp_path / "out.mp4")
    assert result.frames == len(got["frames"]) == 6  # frames 3..8 (t = 0.25 ... 0.667)
    assert got["times"][0] == pytest.approx(0.0, abs=1e-3)
    assert got["audio_seconds"] == pytest.approx(0.5, abs=1100 / RATE)
    # the kept frames are the source's frames 3..8: compare with a run over the whole clip
    run(src, tmp_path / "full.mp4", nets, style_image, temporal=False)
    full = read_clip(tmp_path / "full.mp4")["frames"]
    errs = [np.abs(got["frames"][0] - full[k]).mean() for k in range(12)]
    assert int(np.argmin(errs)) == 3


def test_parse_time():
    assert parse_time("90") == 90 and parse_time("1:30.5") == 90.5 and parse_time("1:00:02") == 3602
    with pytest.raises(ValueError):
        parse_time("1:x")
    with pytest.raises(ValueError):
        parse_time("-3")
    assert parse_time("59:59.5") == 3599.5 and parse_time("2:00:00") == 7200
    for typo in ("1:99", "1:60", "1:60:00", "1.5:30", "1:"):
        with pytest.raises(ValueError, match="MM:SS"):
            parse_time(typo)


# ----- temporal consistency ----------------------------------------------------------------------

def _pan_warping_error(frames: list[np.ndarray]) -> float:
    h, w = frames[0].shape[:2]
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = SHIFT
    valid = np.zeros((h, w), np.float32)
    valid[:, : w - SHIFT] = 1  # the last SHIFT columns are new content
    return float(np.mean([warping_error(frames[t], frames[t - 1], flow, valid) for t in range(1, len(frames))]))


def test_temporal_mode_lowers_the_warping_error_on_a_pan(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mp4", n=8, audio=False)
    run(src, tmp_path / "per_frame.mp4", nets, style_image, temporal=False)
    run(src, tmp_path / "temporal.mp4", nets, style_image)
    e_in = _pan_warping_error(read_clip(src)["frames"])
    e_per = _pan_warping_error(read_clip(tmp_path / "per_frame.mp4")["frames"])
    e_tmp = _pan_warping_error(read_clip(tmp_path / "temporal.mp4")["frames"])
    assert e_in < 0.2 * e_per  # the pan itself is consistent: the flicker comes from the stylizer
    assert e_tmp < 0.6 * e_per


def test_warp_and_occlusion_mask_on_a_known_shift():
    img = _texture(32, 48)
    shifted = np.ascontiguousarray(img[:, 3:])
    prev = np.ascontiguousarray(img[:, :-3])  # frame t-1; frame t = image moved 3 px left
    flow = np.zeros((32, 45, 2), np.float32)
    flow[..., 0] = 3
    np.testing.assert_allclose(warp(prev, flow)[:, :-3], shifted[:, :-3], atol=1e-5)
    mask = consistent_mask(flow, -flow)
    assert mask[:, :-3].all() and not mask[:, -2:].any()  # beyond the frame: new content
    bad = consistent_mask(flow, np.zeros_like(flow))  # forward flow disagrees: occluded everywhere
    assert not bad.any()
    assert warping_error(shifted, prev, flow, mask) < 1e-8


def test_blender_follows_the_previous_output_only_where_valid():
    frames = pan_frames(3, 48, 64)
    blender = TemporalBlender(blend=0.7)
    s0 = np.full((48, 64, 3), 0.2, np.float32)
    s1 = np.full((48, 64, 3), 0.8, np.float32)
    assert np.array_equal(blender(frames[0], s0), s0)  # first frame: its own stylization
    o1 = blender(frames[1], s1)
    inner = o1[8:-8, 8:-12]  # the weight ramps up over ~3 sigma of the feather beside the new strip
    np.testing.assert_allclose(inner, 0.8 + 0.7 * (0.2 - 0.8), atol=1e-3)  # followed the warped O_0
    np.testing.assert_allclose(o1[:, -1], 0.8, atol=1e-6)  # entered at the border: no past
    ramp = o1[24, -14:, 0]  # from the followed inside to the new strip: a ramp, not one hard step
    assert (np.diff(ramp) >= -1e-6).all() and ((ramp > 0.385) & (ramp < 0.795)).sum() >= 3, ramp


def _detail_std(image: np.ndarray) -> float:
    import cv2

    return float((image - cv2.GaussianBlur(image, (0, 0), 4.0))[8:-8, 8:-16].std())


def test_detail_restoration_keeps_the_strokes_contrast_and_most_of_the_coherence():
    """Stylizations of a pan whose fine strokes are new in every frame (a flickering model): the
    plain blend averages them into a fainter texture; with the detail restoration the texture keeps
    the per-frame contrast, and the output still flickers far less than the frames on their own."""
    import cv2

    frames = pan_frames(8, 64, 80)
    rng = np.random.default_rng(0)
    styled = []
    for f in frames:  # the scene, plus strokes of their own in every frame
        strokes = cv2.GaussianBlur(rng.normal(0, 0.4, f.shape).astype(np.float32), (0, 0), 1.0)
        styled.append(np.clip(0.3 * f + 0.35 + strokes, 0, 1).astype(np.float32))
    flow = np.zeros((64, 80, 2), np.float32)
    flow[..., 0] = SHIFT  # the true flow t -> t-1
    mask = np.zeros((64, 80), np.float32)
    mask[8:-8, 8:-16] = 1

    def run(detail: bool) -> tuple[float, float]:
        blender = TemporalBlender(blend=0.6, detail=detail)
        out = [blender(f, s) for f, s in zip(frames, styled)]
        ew = np.mean([warping_error(out[t], out[t - 1], flow, mask) for t in range(2, len(out))])
        return float(ew), float(np.mean([_detail_std(o) for o in out[2:]]))

    own_ew = np.mean([warping_error(styled[t], styled[t - 1], flow, mask) for t in range(2, len(styled))])
    own_detail = np.mean([_detail_std(s) for s in styled[2:]])
    plain_ew, plain_detail = run(False)
    kept_ew, kept_detail = run(True)
    assert plain_detail < 0.8 * own_detail  # the plain blend fades the strokes
    assert abs(kept_detail / own_detail - 1) < 0.1, (kept_detail, own_detail)  # restored
    assert kept_ew < 0.5 * own_ew and plain_ew < kept_ew  # coherence mostly kept (the contrast costs a little)


def test_detail_restoration_only_gives_back_contrast():
    """Never attenuates (a blend with more detail than the frame stays as it is), at most the loss of
    averaging two uncorrelated textures, and a zero weight changes nothing."""
    from painterly.video import restore_detail

    rng = np.random.default_rng(1)
    flat = np.full((32, 32, 3), 0.5, np.float32)
    busy = np.clip(0.5 + rng.normal(0, 0.1, (32, 32, 3)), 0, 1).astype(np.float32)
    m = np.full((32, 32), 0.6, np.float32)
    np.testing.assert_allclose(restore_detail(busy, flat, m), busy, atol=1e-6)  # gain 1, never below
    faint = (0.5 + 0.3 * (busy - 0.5)).astype(np.float32)
    bound = 1 / np.sqrt(0.4 ** 2 + 0.6 ** 2)
    out = restore_detail(faint, busy, m)
    assert _detail_std(out) <= bound * _detail_std(faint) * 1.01  # at most the averaging's loss
    assert _detail_std(out) > 1.3 * _detail_std(faint)
    np.testing.assert_allclose(restore_detail(faint, busy, np.zeros_like(m)), faint, atol=1e-6)


def test_cli_video_no_detail_reaches_the_options(tmp_path, png_file, monkeypatch, capsys):
    import painterly.video as video_mod

    seen = []

    def fake(src, styles, out, options, **kw):
        seen.append(options.detail)
        raise StyleTransferError("stopped by the test")

    monkeypatch.setattr(video_mod, "stylize_video", fake)
    src = make_clip(tmp_path / "in.mp4", n=2)
    for extra in ([], ["--no-detail"]):
        assert main(["video", str(src), str(png_file("style.png")), "-o", str(tmp_path / "o.mp4"), "-q", *extra]) == 1
    assert seen == [True, False]
    assert VideoOptions().detail is True


# ----- bad input: one-line errors, nothing written -----------------------------------------------

def _assert_nothing_written(folder: Path, before: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == before


@pytest.mark.parametrize("case", ["text", "image", "audio_only", "no_frames", "start_past_end", "missing", "folder"])
def test_bad_inputs_are_refused(tmp_path, nets, style_image, png_file, case):
    start = 0.0
    if case == "text":
        src = tmp_path / "notes.mp4"
        src.write_text("this is not a video\n" * 20)
        message = "not a video"
    elif case == "image":
        src = png_file("frame.png")
        message = "is an image"
    elif case == "audio_only":
        src = make_clip(tmp_path / "sound.m4a", video=False)
        message = "no video stream"
    elif case == "no_frames":
        src = _empty_video(tmp_path / "empty.mkv")
        message = "no video frames"
    elif case == "start_past_end":
        src = make_clip(tmp_path / "in.mp4", n=6)
        start = 5.0
        message = "past the end"
    elif case == "missing":
        src = tmp_path / "nope.mp4"
        message = "no such file"
    else:
        src = tmp_path / "dir.mp4"
        src.mkdir()
        message = "is a folder"
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(StyleTransferError, match=message):
        run(src, tmp_path / "out.mp4", nets, style_image, start=start)
    _assert_nothing_written(tmp_path, before)


def _empty_video(path: Path) -> Path:
    """A container with a video stream (and audio) but not one video frame."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=12)
        vs.height, vs.width, vs.pix_fmt = 48, 64, "yuv420p"
        aus = out.add_stream("aac", rate=RATE, layout="mono")
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = RATE, 0
        for p in [*aus.encode(af), *aus.encode(None)]:
            out.mux(p)
    return path


def truncated_clip(path: Path, cut: str = "half", n: int = 16) -> Path:
    """An MP4 of ``n`` noise frames with its index first (``faststart``, as web videos are), cut
    in half (inside a frame) or where a frame's packet begins (every packet before it whole)."""
    full = path.with_name("full-" + path.name)
    rng = np.random.default_rng(0)
    with av.open(str(full), "w", options={"movflags": "faststart"}) as out:
        vs = out.add_stream("libx264", rate=12)
        vs.height, vs.width, vs.pix_fmt = 48, 64, "yuv420p"
        vs.options = {"crf": "30", "bframes": "0"}  # frames of about the same size
        for i in range(n):
            vf = av.VideoFrame.from_ndarray((rng.random((48, 64, 3)) * 255).astype(np.uint8), format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    data = full.read_bytes()
    full.unlink()
    if cut == "half":
        size = len(data) // 2
    else:
        with av.open(io.BytesIO(data)) as c:
            size = [p.pos for p in c.demux(video=0) if p.size][n // 2]
    path.write_bytes(data[:size])
    return path


@pytest.mark.parametrize("cut", ["half", "packet"])
def test_a_truncated_video_is_an_error_not_a_short_video(tmp_path, nets, style_image, cut):
    src = truncated_clip(tmp_path / "cut.mp4", cut)
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 16  # the header still promises every frame
    calls = []
    with pytest.raises(StyleTransferError, match="cannot decode frame|stops after") as info:
        enc, dec = nets
        stylize_video(src, [style_image], tmp_path / "out.mp4", VideoOptions(fast=FastOptions(device="cpu")),
                      encoder=enc, decoder=dec, callback=lambda done, total: calls.append(done))
    assert "\n" not in str(info.value) and max(calls, default=0) < 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


def test_the_readable_part_of_a_truncated_video_can_be_stylized(tmp_path, nets, style_image):
    src = truncated_clip(tmp_path / "cut.mp4", "packet")
    with pytest.raises(StyleTransferError, match=r"--duration (\d\.\d\d) stylizes the part that reads") as info:
        run(src, tmp_path / "out.mp4", nets, style_image)
    duration = float(re.search(r"--duration (\S+)", str(info.value)).group(1))
    result = run(src, tmp_path / "out.mp4", nets, style_image, duration=duration)
    assert result.frames == len(read_clip(tmp_path / "out.mp4")["frames"]) == round(duration * 12)


@pytest.mark.parametrize("case", ["exists", "same_as_input", "no_folder", "bad_suffix", "unwritable"])
def test_bad_outputs_are_refused_before_any_work(tmp_path, nets, style_image, case, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", n=3)
    out = tmp_path / "out.mp4"
    if case == "exists":
        out.write_bytes(b"keep me")
        message = "already exists"
    elif case == "same_as_input":
        out = src
        message = "refusing to overwrite an input"
    elif case == "no_folder":
        out = tmp_path / "missing" / "out.mp4"
        message = "does not exist"
    elif case == "bad_suffix":
        out = tmp_path / "out.gif"
        message = "unsupported output type"
    else:  # /proc takes no new files, even from root (a chmod-ed folder would not stop root)
        out = Path("/proc/painterly-test.mp4")
        message = "cannot write into folder /proc"
    calls = []
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(StyleTransferError, match=message):
        enc, dec = nets
        stylize_video(src, [style_image], out, VideoOptions(fast=FastOptions(device="cpu")),
                      encoder=enc, decoder=dec, callback=lambda *a: calls.append(a))
    assert calls == []  # refused before the first frame
    _assert_nothing_written(tmp_path, before)
    if case == "exists":
        assert out.read_bytes() == b"keep me"


def test_interrupt_leaves_no_output(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mp4", n=6)
    enc, dec = nets

    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_video(src, [style_image], tmp_path / "out.mp4", VideoOptions(fast=FastOptions(device="cpu")),
                      encoder=enc, decoder=dec, callback=stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_output_gets_the_usual_permissions(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mp4", n=2, audio=False)
    old = os.umask(0o022)
    try:
        run(src, tmp_path / "out.mp4", nets, style_image)
    finally:
        os.umask(old)
    assert (tmp_path / "out.mp4").stat().st_mode & 0o777 == 0o644  # mkstemp alone makes 0600


def test_force_overwrites_an_existing_output(tmp_path, nets, style_image):
    src = make_clip(tmp_path / "in.mp4", n=3)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    enc, dec = nets
    stylize_video(src, [style_image], out, VideoOptions(fast=FastOptions(device="cpu")), overwrite=True,
                  encoder=enc, decoder=dec)
    assert len(read_clip(out)["frames"]) == 3


def test_bad_options_are_refused():
    for kw in ({"blend": 1.0}, {"start": -1}, {"duration": 0}, {"method": "wct"}, {"size": 4}, {"crf": 60},
               {"warm_steps": 0}, {"warm_steps": 2.5}):
        with pytest.raises(StyleTransferError):
            VideoOptions(**kw).validate()


# ----- command line ------------------------------------------------------------------------------

@pytest.fixture
def tiny_networks(monkeypatch, nets, tiny_model_file):
    """The fast method gets a real model file that carries its own tiny encoder (nothing patched);
    the optimize method loads the pretrained VGG19, which is swapped for the tiny one."""
    import painterly.encoders

    enc, dec = nets
    monkeypatch.setattr(painterly.encoders, "vgg19", lambda *a, **k: enc)
    return tiny_model_file


def test_cli_video_fast_options_reach_the_stylizer(tmp_path, png_file, tiny_networks, capsys, monkeypatch):
    import painterly.video as video_mod

    seen = {}

    def fake(src, styles, out, options, **kw):
        seen["fast"] = options.fast
        raise StyleTransferError("stopped by the test")

    monkeypatch.setattr(video_mod, "stylize_video", fake)
    src = make_clip(tmp_path / "in.mp4", n=2)
    assert main(["video", str(src), str(png_file("style.png")), "-o", str(tmp_path / "out.mp4"), "-q",
          "--levels", "relu2_1", "relu4_1", "--transform", "wct", "--backend", "onnxruntime"]) == 1
    assert "stopped by the test" in capsys.readouterr().err
    fast = seen["fast"]
    assert (fast.levels, fast.transform, fast.backend) == (["relu2_1", "relu4_1"], "wct", "onnxruntime")


def test_cli_video(tmp_path, png_file, tiny_networks, capsys):
    src = make_clip(tmp_path / "in.mp4", n=4)
    style = png_file("style.png")
    code = main(["video", str(src), str(style), "-o", str(tmp_path / "out.mp4"), "--model", str(tiny_networks),
                 "--size", "32", "-q", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert "4 frames at 12 fps, with audio" in capsys.readouterr().out
    got = read_clip(tmp_path / "out.mp4")
    assert len(got["frames"]) == 4 and got["frames"][0].shape == (24, 32, 3)
    # again without --force: refused, exit 1, one line
    code = main(["video", str(src), str(style), "-o", str(tmp_path / "out.mp4"), "--model", str(tiny_networks)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("painterly: error:") and "exists" in err


def test_cli_video_truncated_input_is_a_one_line_error(tmp_path, png_file, tiny_networks, capsys):
    src = truncated_clip(tmp_path / "cut.mp4", "half")
    code = main(["video", str(src), str(png_file("style.png")), "-o", str(tmp_path / "out.mp4"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("painterly: error:"), err
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".png") == ["cut.mp4"]


# the video command in a process of its own, with the tiny networks; it says "frame" on stdout
# after the first frame, then waits (the test's SIGTERM arrives while it waits)
SLOW_CLI = """
import sys, time, torch
import painterly.encoders, painterly.stylizers.fast as fast, painterly.video as video
from painterly.cli import main
from painterly.encoders import VGG19Encoder
from painterly.models import Decoder
torch.manual_seed(0)
enc, dec = VGG19Encoder(width_divisor=16), Decoder(in_channels=32, width=0.125).eval()
painterly.encoders.vgg19 = lambda *a, **k: enc
fast.load_decoders = lambda *a, **k: ({"relu4_1": dec}, {})
stylize = video.FrameStylizer.__call__
def slow(self, *a, **k):
    out = stylize(self, *a, **k)
    print("frame", flush=True)
    time.sleep(120)
    return out
video.FrameStylizer.__call__ = slow
sys.exit(main(sys.argv[1:]))
"""


def test_cli_video_sigterm_cleans_up_like_ctrl_c(tmp_path, png_file):
    import signal
    import subprocess
    import sys

    src = make_clip(tmp_path / "in.mp4", n=4, audio=False)
    style = png_file("style.png")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CLI, "video", str(src), str(style), "-o",
                             str(out_dir / "styled.mp4"), "-q", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "frame", proc.stderr.read()
        assert [p.name for p in out_dir.iterdir() if p.name.endswith(".part")]  # mid-write
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 143 and err.strip() == "painterly: terminated", err
    assert list(out_dir.iterdir()) == []


def test_sigterm_raises_terminated_only_inside_the_block():
    import signal

    from painterly.signals import Terminated, sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with sigterm_as_interrupt():
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("argv,code,message", [
    (["--blend", "1.5"], 2, "--blend"),
    (["--start", "soon"], 2, "--start"),
    (["--start", "1:99"], 2, "argument --start: expected [HH:]MM:SS"),
    (["--duration", "0"], 2, "argument --duration: must be more than 0 seconds"),
    (["--duration", "0:00"], 2, "argument --duration: must be more than 0 seconds"),
    (["--steps", "3"], 2, "only applies to --method optimize"),
    (["--warm-steps", "3"], 2, "only applies to --method optimize"),
    (["--method", "optimize", "--warm-steps", "0"], 2, "--warm-steps"),
    (["--method", "optimize", "--alpha", "0.5"], 2, "only applies to --method fast"),
    (["--method", "optimize", "--levels", "relu4_1"], 2, "--levels only applies to --method fast"),
    (["--method", "optimize", "--backend", "onnxruntime"], 2, "--backend only applies to --method fast"),
    (["--levels", "relu9_1"], 2, "--levels"),
    (["--style-weights", "1", "2"], 2, "--style-weights"),
    (["-o", "out.avi"], 1, "unsupported output type"),
])
def test_cli_video_usage_errors(tmp_path, png_file, capsys, argv, code, message):
    src = make_clip(tmp_path / "in.mp4", n=2, audio=False)
    style = png_file("style.png")
    base = ["video", str(src), str(style)]
    if "-o" not in argv:
        base += ["-o", str(tmp_path / "out.mp4")]
    got = main(base + [a if a != "out.avi" else str(tmp_path / "out.avi") for a in argv])
    err = capsys.readouterr().err
    assert got == code and message in err and err.count("\n") == 1
    assert not (tmp_path / "out.mp4").exists()


def test_optimize_method_stylizes_every_frame(tmp_path, nets, style_image):
    from painterly.stylizers.optimize import OptimizeOptions

    src = make_clip(tmp_path / "in.mp4", n=3, audio=False)
    enc, _ = nets
    # from noise, 3 steps: far from the photo, so a path that skipped the optimisation would show
    # (H.264 alone moves these tiny frames by ~0.014 on average)
    opts = VideoOptions(method="optimize", optimize=OptimizeOptions(steps=3, init="noise", seed=0, device="cpu"))
    result = stylize_video(src, [style_image], tmp_path / "out.mp4", opts, encoder=enc)
    got, want = read_clip(tmp_path / "out.mp4")["frames"], read_clip(src)["frames"]
    assert result.frames == len(got) == 3
    assert np.abs(got[1] - want[1]).mean() > 0.05


# ----- optimize: warm-started from the previous output (Ruder et al. 2016) ------------------------

def test_blender_warm_start_is_the_warped_previous_output_where_valid():
    from painterly.video import FlowEstimator

    frames = pan_frames(3, 48, 64)
    calls = []
    estimator = FlowEstimator()
    blender = TemporalBlender(blend=0.5, flow=lambda a, b: calls.append(1) or estimator(a, b))
    assert blender.warm_start(frames[0]) is None  # the first frame has no past
    s0 = _texture(48, 64, seed=5).astype(np.float32)
    o0 = blender(frames[0], s0)
    init = blender.warm_start(frames[1])
    backward, valid = FlowEstimator()(frames[1], frames[0])
    assert 0.7 < valid.mean() < 1  # the pan's new columns are not valid, most of the rest is
    want = np.where(valid[..., None] > 0, warp(o0, backward, cubic=True), frames[1])
    np.testing.assert_allclose(init, np.clip(want, 0, 1), atol=1e-6)
    assert init.dtype == np.float32 and init.shape == (48, 64, 3)
    blender(frames[1], s0)
    assert len(calls) == 1  # warm_start and the blend of one frame share its flow


@pytest.mark.parametrize("temporal", [True, False])
def test_optimize_frames_after_the_first_start_from_the_warped_previous_output(tmp_path, nets, style_image,
                                                                             monkeypatch, temporal):
    import painterly.stylizers.optimize as optimize_mod
    import painterly.video as video_mod
    from painterly.stylizers.optimize import OptimizeOptions

    calls, flows, outputs = [], [], []
    real_optimize = optimize_mod.stylize_optimize
    real_flow, real_blend = video_mod.FlowEstimator.__call__, video_mod.TemporalBlender.__call__

    def spy_optimize(content, styles, options, callback=None, encoder=None, init_image=None):
        calls.append((options.steps, None if init_image is None else init_image.clone()))
        return real_optimize(content, styles, options, callback, encoder, init_image)

    def spy_flow(self, current, previous):
        flows.append(real_flow(self, current, previous))
        return flows[-1]

    def spy_blend(self, frame, stylized):
        outputs.append((frame, real_blend(self, frame, stylized)))
        return outputs[-1][1]

    monkeypatch.setattr(optimize_mod, "stylize_optimize", spy_optimize)
    monkeypatch.setattr(video_mod.FlowEstimator, "__call__", spy_flow)
    monkeypatch.setattr(video_mod.TemporalBlender, "__call__", spy_blend)
    src = make_clip(tmp_path / "in.mp4", n=4, audio=False)
    opts = VideoOptions(method="optimize", temporal=temporal, warm_steps=2,
                        optimize=OptimizeOptions(steps=3, init="noise", seed=0, device="cpu"))
    result = stylize_video(src, [style_image], tmp_path / "out.mp4", opts, encoder=nets[0])
    assert result.frames == len(read_clip(tmp_path / "out.mp4")["frames"]) == len(calls) == 4
    if not temporal:  # per-frame: every frame on its own, full schedule from the photo
        assert all(steps == 3 and init is None for steps, init in calls)
        return
    assert calls[0][0] == 3 and calls[0][1] is None  # the first frame: full schedule, from options.init
    assert len(flows) == len(outputs) - 1 == 3  # one flow per later frame, shared by warm start and blend
    for t in (1, 2, 3):
        steps, init = calls[t]
        assert steps == [2] and init is not None
        (backward, valid), (frame, _), (_, previous) = flows[t - 1], outputs[t], outputs[t - 1]
        assert valid.mean() > 0.5
        init = init[0].permute(1, 2, 0).numpy()
        warped = np.clip(warp(previous, backward, cubic=True), 0, 1)
        photo = frame.astype(np.float32) / 255
        inside = valid > 0
        np.testing.assert_allclose(init[inside], warped[inside], atol=1e-6)  # the warped previous output
        np.testing.assert_allclose(init[~inside], photo[~inside], atol=1e-6)  # occluded: the photo
        # and not the photo: the noise-started stylization is far from it
        assert np.abs(init[inside] - photo[inside]).mean() > 0.05


def test_cli_video_optimize_warm_steps(tmp_path, png_file, tiny_networks, capsys, monkeypatch):
    import painterly.video as video_mod

    seen = []
    real = video_mod.stylize_video
    monkeypatch.setattr(video_mod, "stylize_video", lambda *a, **k: seen.append(a[3]) or real(*a, **k))
    src = make_clip(tmp_path / "in.mp4", n=3, audio=False)
    code = main(["video", str(src), str(png_file("style.png")), "-o", str(tmp_path / "out.mp4"), "--method",
                 "optimize", "--steps", "2", "--warm-steps", "1", "--size", "32", "-q", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert "3 frames" in capsys.readouterr().out
    assert seen[0].warm_steps == 1 and seen[0].optimize.steps == 2


def test_the_blend_defaults_to_the_methods_own():
    from painterly.video import DEFAULT_BLEND

    assert VideoOptions().effective_blend() == DEFAULT_BLEND == 0.6
    assert VideoOptions(method="optimize").effective_blend() == 0.0  # its warm start keeps frames coherent
    assert VideoOptions(method="optimize", blend=0.3).effective_blend() == 0.3
    assert VideoOptions(blend=0.0).effective_blend() == 0.0


# ----- bounded memory ----------------------------------------------------------------------------

def test_the_pipeline_keeps_no_old_frames(tmp_path, nets, style_image, monkeypatch):
    """Streaming: after frame t is written, only frames t and t-1 (the blend's past) may be alive."""
    import weakref

    import painterly.stylizers.fast as fast_mod
    import painterly.video as video_mod

    inputs, stylized, alive = [], [], []
    real_blend, real_fast = video_mod.TemporalBlender.__call__, fast_mod.stylize_fast

    def spy_blend(self, frame, styled):
        out = real_blend(self, frame, styled)
        inputs.append(weakref.ref(frame))
        stylized.append(weakref.ref(out))
        return out

    def spy_fast(*a, **k):
        out = real_fast(*a, **k)
        stylized.append(weakref.ref(out))
        return out

    def callback(done, total):
        alive.append((sum(r() is not None for r in inputs), sum(r() is not None for r in stylized)))

    monkeypatch.setattr(video_mod.TemporalBlender, "__call__", spy_blend)
    monkeypatch.setattr(fast_mod, "stylize_fast", spy_fast)
    src = make_clip(tmp_path / "in.mp4", n=8)
    enc, dec = nets
    stylize_video(src, [style_image], tmp_path / "out.mp4", VideoOptions(fast=FastOptions(device="cpu")),
                  encoder=enc, decoder=dec, callback=callback)
    assert len(alive) == 8 and len(inputs) == 8
    assert max(a for a, _ in alive) <= 2  # the current and the previous input frame
    assert max(s for _, s in alive) <= 2  # the previous output (the blend's past) and at most one more


# ----- the model's levels and backend ------------------------------------------------------------

@pytest.fixture
def two_level_model(tmp_path, nets):
    """A bundle with relu4_1 and relu2_1 decoders that carries its own (tiny) encoder."""
    from painterly import checkpoint as ckpt
    from painterly.stylizers.fast import save_bundle

    enc, dec = nets
    torch.manual_seed(5)
    shallow = Decoder(in_channels=8, width=0.125, level="relu2_1").eval()
    files = []
    for d in (dec, shallow):
        files.append(ckpt.atomic_save({f"decoder.{k}": v for k, v in d.state_dict().items()},
                                      tmp_path / f"{d.level}.safetensors", {"decoder": d.config}))
    return save_bundle(files, tmp_path / "bundle.safetensors", half=False, student=enc)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_video_runs_every_level_of_the_model_on_its_backend(tmp_path, two_level_model, style_image, monkeypatch,
                                                            backend):
    """Frames get the model's whole cascade (as a photo does), on the backend asked for."""
    import painterly.stylizers.fast as fast_mod

    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
        monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    seen = []
    real = fast_mod.FastStylizer.__call__

    def spy(self, content, styles, options=None, **kw):
        seen.append((sorted(self.decoders), type(self.encoder).__name__, self.backend))
        return real(self, content, styles, options, **kw)

    monkeypatch.setattr(fast_mod.FastStylizer, "__call__", spy)
    src = make_clip(tmp_path / "in.mp4", n=3, audio=False)
    opts = VideoOptions(fast=FastOptions(device="cpu", model=str(two_level_model), backend=backend), temporal=False)
    result = stylize_video(src, [style_image], tmp_path / "out.mp4", opts)
    assert result.frames == 3
    encoder = "OrtEncoder" if backend == "onnxruntime" else "VGG19Encoder"
    assert seen == [(["relu2_1", "relu4_1"], encoder, backend)] * 3
