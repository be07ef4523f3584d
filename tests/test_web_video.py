"""Video over the HTTP API: a clip sent to ``POST /api/v1/jobs`` comes back as an MP4 with
frame progress; the limits (duration, resolution, frames, bytes) answer 413 with a JSON
message; unreadable clips 415, clips without frames 422; the synchronous endpoint refuses
video. The server runs the library's real ``stylize_video`` with tiny stand-in networks on
small synthetic clips made here with PyAV (a few frames at 64 px).
"""
from __future__ import annotations

import argparse
import threading
import time
import warnings
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("cv2")
pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from painterly.encoders import VGG19Encoder  # noqa: E402
from painterly.errors import StyleTransferError  # noqa: E402
from painterly.models import Decoder  # noqa: E402
from painterly.video import probe_video  # noqa: E402
from painterly.web import Settings, add_serve_parser, create_app, settings_from_args  # noqa: E402
from painterly.web.engine import LibraryEngine, VideoTask  # noqa: E402
from test_video import make_clip, pan_frames, truncated_clip  # noqa: E402  (the clips of the video tests)
from test_web_api import wait_final  # noqa: E402


@pytest.fixture(scope="module")
def nets():
    """The video tests' tiny networks (a decoder whose output follows the content)."""
    torch.manual_seed(0)
    enc = VGG19Encoder(width_divisor=16)
    dec = Decoder(in_channels=32, width=0.125, input_scale=1e-3).eval()
    with torch.no_grad():
        dec.net[-1].bias.fill_(0.5)
        dec.net[-1].weight.mul_(20.0)
    return enc, dec


class RecordingEngine(LibraryEngine):
    """The real engine; remembers its video tasks and can hold a run after some frames."""

    def __init__(self, nets, hold_after: int | None = None, fail: str | None = None):
        super().__init__(device="cpu", encoder=nets[0], decoder=nets[1])
        self.tasks: list[VideoTask] = []
        self.hold_after = hold_after
        self.release = threading.Event()
        self.held = threading.Event()
        self.fail = fail

    def run_video(self, task, progress, output):
        self.tasks.append(task)
        if self.fail:
            raise StyleTransferError(f"{task.input}: {self.fail}")

        def watched(done, total):
            progress(done, total)
            if self.hold_after is not None and done == self.hold_after:
                self.held.set()
                while not self.release.wait(0.01):
                    progress(done, total)  # raises JobCancelled once the job is cancelled

        return super().run_video(task, watched, output)


@contextmanager
def client_for(engine, **settings):
    settings.setdefault("workers", 1)
    app = create_app(Settings(**settings), engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.app_state = app.state
        yield client


def clip_file(path: Path, mime: str = "video/mp4"):
    return [("content", (path.name, path.read_bytes(), mime))]


def read_mp4(data: bytes, path: Path) -> dict:
    path.write_bytes(data)
    with av.open(str(path)) as c:
        info = {"streams": sorted(s.type for s in c.streams), "rate": c.streams.video[0].average_rate,
                "format": c.format.name}
        info["frames"] = [f.to_ndarray(format="rgb24").astype(np.float32) / 255 for f in c.decode(video=0)]
    return info


def leftovers(client) -> list[str]:
    """Files in the server's folder besides results (uploads, temporaries)."""
    return sorted(p.name for p in client.app_state.manager.dir.iterdir() if p.name.startswith("."))


def silent_clip(path: Path) -> Path:
    """An AVI with a video stream and no frame in it (an MP4 without samples has no stream)."""
    with av.open(str(path), "w", format="avi") as out:
        vs = out.add_stream("mpeg4", rate=12)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    return path


# --- the happy path --------------------------------------------------------------------------
def test_clip_to_job_to_mp4_with_progress(tmp_path, nets):
    engine = RecordingEngine(nets)
    src = make_clip(tmp_path / "in.mp4", n=6, fps=12)
    with client_for(engine, result_ttl=600) as c:
        health = c.get("/api/v1/health").json()
        assert health["video"] is True and health["video_unavailable"] is None
        assert health["limits"]["max_video_seconds"] == 20 and health["limits"]["max_video_side"] == 1920
        assert health["video_size_choices"] == [256, 512, 1024, 1920]
        r = c.post("/api/v1/jobs", files=clip_file(src), data={"style": "swirls"})
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == job["status_url"]
        assert (job["kind"], job["media_type"], job["frames"]) == ("video", "video/mp4", 6)
        assert (job["width"], job["height"]) == (64, 48)  # the default 512 never enlarges a clip
        assert job["options"]["format"] == "mp4" and job["options"]["temporal"] is True
        done = wait_final(c, job["id"])
        assert done["status"] == "succeeded", done
        assert (done["frames_done"], done["percent"], done["eta_seconds"]) == (6, 100, 0)
        task = engine.tasks[0]
        assert task.temporal and task.audio and task.alpha == 1.0 and task.method == "fast"

        r = c.get(done["result_url"])
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        assert r.headers["content-disposition"].startswith("inline;") and ".mp4" in r.headers["content-disposition"]
        got = read_mp4(r.content, tmp_path / "out.mp4")
        assert got["streams"] == ["audio", "video"] and got["rate"] == Fraction(12)
        assert len(got["frames"]) == 6 and got["frames"][0].shape == (48, 64, 3)
        source = [f for f in pan_frames(6)]
        assert np.abs(got["frames"][3] - source[3]).mean() > 0.05  # stylized, not copied
        # a <video> seeks with Range requests
        part = c.get(done["result_url"], headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100 and part.content == r.content[:100]
        r = c.get(done["result_url"], params={"download": "true"})
        assert r.headers["content-disposition"].startswith("attachment;")
        r = c.get(done["result_url"], params={"format": "png"})
        assert r.status_code == 422 and "MP4" in r.json()["detail"]
        # the upload is gone as soon as the job ended: only the result is left
        assert leftovers(c) == []
        assert sorted(p.name for p in c.app_state.manager.dir.iterdir()) == [f"{job['id']}.mp4"]
        # the clip's measured time per frame is what /estimate answers for a video from now on
        per_frame = c.get("/api/v1/estimate", params={"width": 64, "height": 48, "frames": 1}).json()
        # (seconds are rounded to 0.1: long clips make the proportion measurable on any machine)
        many = c.get("/api/v1/estimate", params={"width": 64, "height": 48, "frames": 1000}).json()
        more = c.get("/api/v1/estimate", params={"width": 64, "height": 48, "frames": 10000}).json()
        assert (per_frame["width"], per_frame["height"]) == (64, 48)  # never enlarged
        assert more["seconds"] == pytest.approx(10 * many["seconds"], rel=0.1)
        assert per_frame["seconds"] < 2  # tiny networks: far under the prior (~6 s for a fast image this size)
        assert many["seconds"] < 1000 * 2


def test_options_reach_the_video(tmp_path, nets):
    engine = RecordingEngine(nets)
    src = make_clip(tmp_path / "in.mkv", frames=pan_frames(8, 72, 96), fps=12)
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(red).save(buf, "PNG")
    with client_for(engine) as c:
        r = c.post("/api/v1/jobs", files=clip_file(src, "video/x-matroska") + [("style", ("red.png", buf.getvalue(),
                                                                                  "image/png"))],
                   data={"size": "64", "temporal": "false", "audio": "false", "alpha": "0.5",
                         "preserve_color": "histogram", "start": "0.25", "duration": "0.25"})
        assert r.status_code == 202, r.text
        job = r.json()
        assert (job["width"], job["height"], job["frames"]) == (64, 48, 3)
        done = wait_final(c, job["id"])
        assert done["status"] == "succeeded", done
        task = engine.tasks[0]
        assert (task.temporal, task.audio, task.alpha, task.preserve_color) == (False, False, 0.5, "histogram")
        assert (task.start, task.duration, task.size) == (0.25, 0.25, 64)
        assert torch.allclose(task.styles[0].mean(dim=(2, 3)), torch.tensor([[1.0, 0.0, 0.0]]), atol=1e-3)
        got = read_mp4(c.get(done["result_url"]).content, tmp_path / "out.mp4")
        assert got["format"].startswith("mov,mp4") and got["streams"] == ["video"]
        assert len(got["frames"]) == 3 and got["frames"][0].shape == (48, 64, 3)


def test_progress_counts_frames_and_cancel_cleans_up(tmp_path, nets):
    engine = RecordingEngine(nets, hold_after=2)
    src = make_clip(tmp_path / "in.mp4", n=6, audio=False)
    with client_for(engine) as c:
        job = c.post("/api/v1/jobs", files=clip_file(src), data={"style": "waves"}).json()
        assert engine.held.wait(60)
        status = c.get(job["status_url"]).json()
        assert status["status"] == "running" and status["frames_done"] == 2 and status["frames"] == 6
        assert status["progress"] == pytest.approx(2 / 6, abs=1e-3) and status["percent"] == 33
        assert status["eta_seconds"] is not None and status["result_url"] is None
        assert c.get(f"{job['status_url']}/result").status_code == 409
        assert c.delete(job["status_url"]).status_code == 200
        done = wait_final(c, job["id"])
        assert done["status"] == "cancelled"
        assert list(c.app_state.manager.dir.iterdir()) == []  # no upload, no half-written MP4


def test_stopping_the_server_mid_video_leaves_no_partial_file(tmp_path, nets):
    """What SIGTERM to `serve` does (uvicorn stops the app): running jobs are cancelled and
    their half-written MP4s removed, even in a result folder the server keeps."""
    engine = RecordingEngine(nets, hold_after=1)
    results = tmp_path / "results"
    with client_for(engine, result_dir=str(results)) as c:
        job = c.post("/api/v1/jobs", files=clip_file(make_clip(tmp_path / "in.mp4", n=4, audio=False)),
                     data={"style": "swirls"}).json()
        assert engine.held.wait(60)
        assert [p.name for p in results.iterdir() if p.name.endswith(".part")]  # mid-write
    assert c.app_state.manager.get(job["id"]).state == "cancelled"
    assert list(results.iterdir()) == []


def test_a_failed_run_reports_without_server_paths(tmp_path, nets):
    engine = RecordingEngine(nets, fail="cannot decode frame 3: Invalid data")
    with client_for(engine) as c:
        job = c.post("/api/v1/jobs", files=clip_file(make_clip(tmp_path / "in.mp4", n=3)),
                     data={"style": "swirls"}).json()
        done = wait_final(c, job["id"])
        assert done["status"] == "failed"
        assert done["error"] == "content: cannot decode frame 3: Invalid data"
        assert leftovers(c) == []


def test_a_truncated_clip_fails_and_the_counts_tell_the_truth(tmp_path, nets):
    engine = RecordingEngine(nets)
    with client_for(engine) as c:
        job = c.post("/api/v1/jobs", files=clip_file(truncated_clip(tmp_path / "cut.mp4")),
                     data={"style": "swirls"}).json()
        assert job["frames"] == 16  # what the header promises
        done = wait_final(c, job["id"])
        assert done["status"] == "failed" and done["error"].startswith("content: cannot decode frame"), done
        assert done["frames_done"] < 16 and done["result_url"] is None
        assert leftovers(c) == [] and not list(c.app_state.manager.dir.glob("*.mp4"))
        # a finished job counts the frames it wrote (not the header's estimate for the part kept)
        src = make_clip(tmp_path / "in.mp4", n=12, audio=False)
        job = c.post("/api/v1/jobs", files=clip_file(src), data={"style": "swirls", "start": "0.2",
                                                                 "duration": "0.45"}).json()
        done = wait_final(c, job["id"])
        written = len(read_mp4(c.get(done["result_url"]).content, tmp_path / "out.mp4")["frames"])
        assert done["status"] == "succeeded" and done["frames"] == done["frames_done"] == written


# --- limits: 413 with a JSON message ---------------------------------------------------------
def test_over_limit_clips_are_413(tmp_path, nets):
    engine = RecordingEngine(nets)
    long_clip = make_clip(tmp_path / "long.mp4", n=12, fps=12)  # 1 s
    with client_for(engine, max_video_seconds=0.5) as c:
        r = c.post("/api/v1/jobs", files=clip_file(long_clip), data={"style": "swirls"})
        assert r.status_code == 413, r.text
        detail = r.json()["detail"]
        assert detail.startswith("content: the video is 1.0 s long; the limit is 0.5 s") and "start" in detail
        assert leftovers(c) == [] and not engine.tasks
        # a part of it within the limit is fine
        r = c.post("/api/v1/jobs", files=clip_file(long_clip), data={"style": "swirls", "start": "0.25",
                                                                     "duration": "0.5"})
        assert r.status_code == 202, r.text
        assert r.json()["frames"] == 6
        assert wait_final(c, r.json()["id"])["status"] == "succeeded"
        r = c.post("/api/v1/jobs", files=clip_file(long_clip), data={"style": "swirls", "start": "5"})
        assert r.status_code == 422 and "past the end" in r.text

    with client_for(engine, max_video_side=80, max_video_short_side=64) as c:
        wide = make_clip(tmp_path / "wide.mp4", frames=pan_frames(2, 72, 96))
        r = c.post("/api/v1/jobs", files=clip_file(wide), data={"style": "swirls"})
        assert r.status_code == 413 and r.json()["detail"] == \
            "content: the video is 96x72; the limit is 80x64 (either orientation): scale it down first"
        # portrait within the same limit (64 x 80) is fine
        tall = make_clip(tmp_path / "tall.mp4", frames=[f.transpose(1, 0, 2)[:80] for f in pan_frames(2, 64, 80)])
        assert c.post("/api/v1/jobs", files=clip_file(tall), data={"style": "swirls"}).status_code == 202
    with client_for(engine, max_video_frames=4) as c:
        r = c.post("/api/v1/jobs", files=clip_file(make_clip(tmp_path / "many.mp4", n=6)), data={"style": "swirls"})
        assert r.status_code == 413 and "6 frames" in r.json()["detail"] and "limit is 4" in r.json()["detail"]
    clip = make_clip(tmp_path / "heavy.mp4", n=6)
    with client_for(engine, max_video_bytes=clip.stat().st_size - 1) as c:
        r = c.post("/api/v1/jobs", files=clip_file(clip), data={"style": "swirls"})
        assert r.status_code == 413 and r.json()["detail"].startswith("content: the video is")
        assert leftovers(c) == []
        # over the whole request limit (photo limit + video limit): refused before it is read
        r = c.post("/api/v1/jobs", files=[("content", ("big.mp4", b"\0" * (21 << 20), "video/mp4"))],
                   data={"style": "swirls"})
        assert r.status_code == 413 and "upload too large" in r.json()["detail"]
    with client_for(engine) as c:
        r = c.post("/api/v1/jobs", files=clip_file(clip), data={"style": "swirls", "size": "2048"})
        assert r.status_code == 422 and "at most 1920 for a video" in r.text


@pytest.mark.parametrize("field, value", [("start", "inf"), ("start", "1e400"), ("start", "nan"),
                                          ("duration", "inf"), ("duration", "1e400"), ("duration", "nan")])
def test_non_finite_times_are_422_before_anything_is_queued(tmp_path, nets, field, value):
    engine = RecordingEngine(nets)
    with client_for(engine) as c:
        r = c.post("/api/v1/jobs", files=clip_file(make_clip(tmp_path / "in.mp4", n=2, audio=False)),
                   data={"style": "swirls", field: value})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", field] and "finite" in r.json()["detail"][0]["msg"]
        assert c.app_state.manager.stats()["jobs_kept"] == 0 and not engine.tasks and leftovers(c) == []


def test_photos_keep_their_own_byte_limit_on_a_video_server(nets):
    import os

    with client_for(RecordingEngine(nets), max_upload_bytes=50_000) as c:
        r = c.post("/api/v1/jobs", files=[("content", ("a.png", os.urandom(60_000), "image/png"))],
                   data={"style": "swirls"})
        assert r.status_code == 413 and "too large" in r.json()["detail"]


# --- what is not a usable video --------------------------------------------------------------
def test_unreadable_clips(tmp_path, nets):
    engine = RecordingEngine(nets)
    with client_for(engine) as c:
        r = c.post("/api/v1/jobs", files=[("content", ("x.mp4", b"\0\0\0\x18ftypisom" + b"junk" * 50, "video/mp4"))],
                   data={"style": "swirls"})
        assert r.status_code == 415 and r.json()["detail"].startswith("content: not a video"), r.text
        r = c.post("/api/v1/jobs", files=[("content", ("notes.mp4", b"hello, not a clip" * 20, "video/mp4"))],
                   data={"style": "swirls"})
        assert r.status_code == 415 and "content: not a video" in r.json()["detail"]
        audio = make_clip(tmp_path / "audio.m4a", n=6, video=False)
        r = c.post("/api/v1/jobs", files=clip_file(audio, "audio/mp4"), data={"style": "swirls"})
        assert r.status_code == 415 and r.json()["detail"] == "content: has no video stream"
        r = c.post("/api/v1/jobs", files=clip_file(silent_clip(tmp_path / "empty.avi"), "video/x-msvideo"),
                   data={"style": "swirls"})
        assert r.status_code == 422
        assert r.json()["detail"][0]["msg"] == "content: the video has no frames"
        # neither an image nor a video by its bytes: the photo's 400
        r = c.post("/api/v1/jobs", files=[("content", ("x.bin", b"just text" * 30, "application/octet-stream"))],
                   data={"style": "swirls"})
        assert r.status_code == 400 and "not an image" in r.json()["detail"]
        r = c.post("/api/v1/jobs", files=clip_file(make_clip(tmp_path / "in.mp4", n=2)),
                   data={"style": "swirls", "method": "optimize"})
        assert r.status_code == 422 and "method=fast" in r.text
        assert "Traceback" not in r.text and leftovers(c) == [] and not engine.tasks


def test_sync_endpoint_refuses_video(tmp_path, nets):
    with client_for(RecordingEngine(nets)) as c:
        r = c.post("/api/v1/stylize", files=clip_file(make_clip(tmp_path / "in.mp4", n=2)), data={"style": "swirls"})
        assert r.status_code == 415
        assert "POST /api/v1/jobs" in r.json()["detail"] and "photos only" in r.json()["detail"]
        assert leftovers(c) == []


def test_a_server_without_video_says_so(tmp_path):
    from test_web_api import Stub  # an engine with images only

    with client_for(Stub()) as c:
        health = c.get("/api/v1/health").json()
        assert health["video"] is False and "does not stylize video" in health["video_unavailable"]
        r = c.post("/api/v1/jobs", files=clip_file(make_clip(tmp_path / "in.mp4", n=2)), data={"style": "swirls"})
        assert r.status_code == 503 and "does not take video" in r.json()["detail"]
        assert leftovers(c) == []


def test_results_expire_and_the_openapi_documents_video(tmp_path, nets):
    with client_for(RecordingEngine(nets), result_ttl=0.3) as c:
        job = c.post("/api/v1/jobs", files=clip_file(make_clip(tmp_path / "in.mp4", n=2)),
                     data={"style": "swirls"}).json()
        assert wait_final(c, job["id"])["status"] == "succeeded"
        path = c.app_state.manager.dir / f"{job['id']}.mp4"
        deadline = time.time() + 5
        while path.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert not path.exists() and c.get(job["status_url"]).status_code == 404
        spec = c.get("/openapi.json").json()
        post = spec["paths"]["/api/v1/jobs"]["post"]
        form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        assert "video" in form["content"]["description"] and {"temporal", "audio", "start", "duration"} <= set(form)
        assert {"413", "415"} <= set(post["responses"])
        sync_form = spec["paths"]["/api/v1/stylize"]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert "temporal" not in sync_form["schema"]["properties"]
        result = spec["paths"]["/api/v1/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
        assert "video/mp4" in result


def test_probe_video_reads_the_header_and_first_frame(tmp_path):
    info = probe_video(make_clip(tmp_path / "in.mp4", n=6, fps=12, rotation=90))
    assert (info.width, info.height, info.frames, info.fps, info.rotation, info.audio) == (64, 48, 6, 12.0, 90, True)
    assert info.duration == pytest.approx(0.5, abs=0.05)
    assert info.output_size(40) == (30, 40)
    assert probe_video(silent_clip(tmp_path / "empty.avi")).frames == 0


def test_serve_video_flags():
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    s = settings_from_args(parser.parse_args(["serve"]))
    assert (s.max_video_seconds, s.max_video_bytes, s.max_video_side, s.max_video_short_side) == \
        (20, 100 << 20, 1920, 1080)
    s = settings_from_args(parser.parse_args(["serve", "--max-video-seconds", "8", "--max-video-mb", "30",
                                              "--max-video-resolution", "720x1280"]))
    assert (s.max_video_seconds, s.max_video_bytes, s.max_video_side, s.max_video_short_side) == \
        (8, 30 << 20, 1280, 720)
    for bad in (["--max-video-resolution", "1080p"], ["--max-video-resolution", "10x10"],
                ["--max-video-seconds", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", *bad])
