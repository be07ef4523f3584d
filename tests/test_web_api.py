"""HTTP API tests: every endpoint over HTTP (Starlette's TestClient speaks HTTP to the ASGI app
through httpx), the happy paths and every error the issue lists. A stub engine stands in for
the stylizers, so these run in seconds and need no model weights; it computes a real function
of its inputs (content blended with the style's mean colour) so the tests can check that the
uploaded images and options really reached it.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import os
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # Starlette nags about httpx vs httpx2; httpx is what we ship with
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from painterly.errors import StyleTransferError  # noqa: E402
from painterly.web import Settings, add_serve_parser, create_app, settings_from_args  # noqa: E402
from painterly.web.config import API_KEY_ENV  # noqa: E402
from painterly.web.engine import LibraryEngine, Task, planned_seconds  # noqa: E402


class Stub:
    """Output = (1 - alpha) * content + alpha * weighted mean colour of the styles."""

    def __init__(self, modes=None, gate: threading.Event | None = None, fail: Exception | None = None,
                 hold_at: float = 0.5):
        self._modes = modes or {"fast": True, "optimize": True}
        self.gate = gate
        self.hold_at = hold_at  # the progress reported while the gate is shut
        self.fail = fail
        self.tasks: list[Task] = []
        self.started = threading.Event()

    def modes(self):
        return dict(self._modes)

    def run(self, task: Task, progress):
        self.tasks.append(task)
        progress(self.hold_at)
        self.started.set()
        if self.gate is not None:
            while not self.gate.wait(0.01):
                progress(self.hold_at)  # raises JobCancelled once the job is cancelled
        if self.fail is not None:
            raise self.fail
        weights = task.style_weights or [1.0] * len(task.styles)
        total = sum(weights)
        colour = sum(w / total * s.mean(dim=(2, 3), keepdim=True) for w, s in zip(weights, task.styles))
        progress(1.0)
        return ((1 - task.alpha) * task.content + task.alpha * colour).clamp(0, 1)


@contextmanager
def client_for(engine=None, **settings):
    settings.setdefault("workers", 1)
    app = create_app(Settings(**settings), engine or Stub())
    with TestClient(app, raise_server_exceptions=False) as client:
        client.app_state = app.state
        yield client


def image_bytes(w=40, h=30, color=None, fmt="PNG", mode="RGB") -> bytes:
    if color is None:
        rng = np.random.default_rng(w * 1000 + h)
        arr = rng.integers(0, 256, (h, w, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    else:
        arr = np.zeros((h, w, len(color)), np.uint8) + np.array(color, np.uint8)
    img = Image.fromarray(arr, mode if color is None else ("RGBA" if len(color) == 4 else "RGB"))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (never decoded by a safe server)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def files(content: bytes | None = None, style: bytes | None = None):
    out = []
    if content is not None:
        out.append(("content", ("photo.png", content, "image/png")))
    if style is not None:
        out.append(("style", ("style.png", style, "image/png")))
    return out


def wait_final(client, job_id, timeout=60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = client.get(f"/api/v1/jobs/{job_id}").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# --- discovery -------------------------------------------------------------------------------
def test_health_styles_and_thumbnails():
    with client_for() as c:
        health = c.get("/api/v1/health").json()
        assert health["status"] == "ok" and health["modes"] == {"fast": True, "optimize": True}
        assert health["default_method"] == "fast"
        assert health["queue"]["workers"] == 1
        assert health["estimated_seconds"]["fast"] > 0 and health["estimated_seconds"]["optimize"] > 0
        styles = c.get("/api/v1/styles").json()
        assert len(styles) >= 5
        assert len({s["name"] for s in styles}) == len(styles)
        for s in styles:
            r = c.get(s["thumbnail_url"])
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            assert decode(r.content).size == (192, 192)
        r = c.get(styles[0]["image_url"])
        assert r.status_code == 200 and min(decode(r.content).size) >= 256
        assert c.get("/api/v1/styles/nope/thumbnail").status_code == 404
        assert c.get("/api/v1/styles/..%2F..%2Fetc/thumbnail").status_code == 404


def test_page_and_openapi_are_served():
    with client_for() as c:
        r = c.get("/")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "Stylize" in r.text and "/static/app.js" in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert c.get("/static/app.js").status_code == 200
        assert c.get("/static/app.css").status_code == 200
        assert c.get("/static/../web/app.py").status_code == 404
        r = c.get("/api")
        assert r.status_code == 200 and "/static/api.js" in r.text and "content-security-policy" in r.headers
        spec = c.get("/openapi.json").json()
        for path in ("/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/result",
                     "/api/v1/stylize", "/api/v1/styles"):
            assert path in spec["paths"], path
        body = spec["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert {"content", "style", "alpha", "preserve_color", "method", "size"} <= set(body["properties"])
        # the web's first words are still accepted, and documented as deprecated
        for old in ("strength", "keep_colors", "quality"):
            assert body["properties"][old]["deprecated"] is True, old


# --- happy paths -----------------------------------------------------------------------------
def test_job_with_builtin_style_end_to_end():
    stub = Stub()
    with client_for(stub) as c:
        content = image_bytes(80, 60, color=(200, 40, 40))
        r = c.post("/api/v1/jobs", files=files(content), data={"style": "waves", "alpha": "0.5"})
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/api/v1/jobs/{job['id']}"
        assert job["status"] in ("queued", "running", "succeeded")
        assert len(job["id"]) == 22
        done = wait_final(c, job["id"])
        assert done["status"] == "succeeded", done
        assert done["percent"] == 100 and done["eta_seconds"] == 0 and done["expires_at"] > done["finished_at"]
        assert done["options"]["style"] == ["waves"] and done["options"]["method"] == "fast"
        r = c.get(done["result_url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        img = decode(r.content)
        assert img.size == (80, 60) and img.mode == "RGB"
        # the stub got the real built-in style: the result is half photo, half the style's mean colour
        from painterly.web.styles import style_array
        style_mean = np.asarray(style_array("waves"), np.float64).reshape(-1, 3).mean(0)
        expected = 0.5 * np.array([200, 40, 40]) + 0.5 * style_mean
        got = np.asarray(img, np.float64).reshape(-1, 3).mean(0)
        assert np.allclose(got, expected, atol=3), (got, expected)
        assert stub.tasks[0].alpha == 0.5 and stub.tasks[0].method == "fast"
        # JPEG on request, and as a download
        r = c.get(done["result_url"], params={"format": "jpeg", "download": "true"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.content[:3] == b"\xff\xd8\xff"
        assert r.headers["content-disposition"].startswith("attachment;")
        assert c.get(done["result_url"], params={"format": "gif"}).status_code == 422


def test_uploaded_style_options_and_size():
    stub = Stub()
    with client_for(stub) as c:
        content = image_bytes(200, 100)
        style = image_bytes(50, 50, color=(0, 0, 255))
        r = c.post("/api/v1/jobs", files=files(content, style),
                   data={"size": "64", "preserve_color": "true", "method": "optimize", "seed": "7", "format": "jpg"})
        assert r.status_code == 202, r.text
        done = wait_final(c, r.json()["id"])
        assert (done["width"], done["height"]) == (64, 32)
        task = stub.tasks[0]
        assert task.preserve_color == "luminance" and task.method == "optimize" and task.seed == 7
        assert torch.allclose(task.styles[0].mean(dim=(2, 3)), torch.tensor([[0.0, 0.0, 1.0]]), atol=1e-3)
        r = c.get(done["result_url"])  # default format follows the job's option
        assert r.headers["content-type"] == "image/jpeg"
        assert decode(r.content).size == (64, 32)
        blue = np.asarray(decode(r.content), np.float64).reshape(-1, 3).mean(0)
        assert blue[2] > 240 and blue[0] < 15


def test_several_styles_with_weights():
    stub = Stub()
    with client_for(stub) as c:
        red, blue = image_bytes(20, 20, color=(255, 0, 0)), image_bytes(20, 20, color=(0, 0, 255))
        parts = files(image_bytes(32, 32)) + [("style", ("a.png", red, "image/png")), ("style", ("b.png", blue, "image/png"))]
        r = c.post("/api/v1/jobs", files=parts, data={"style_weights": "0.75,0.25"})
        assert r.status_code == 202, r.text
        done = wait_final(c, r.json()["id"])
        got = np.asarray(decode(c.get(done["result_url"]).content), np.float64).reshape(-1, 3).mean(0)
        assert np.allclose(got, [0.75 * 255, 0, 0.25 * 255], atol=2), got
        r = c.post("/api/v1/jobs", files=parts, data={"style_weights": "1"})
        assert r.status_code == 422 and "2 styles" in r.text
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": ["waves", "embers"], "style_weights": "1,3"})
        assert r.status_code == 202
        assert wait_final(c, r.json()["id"])["options"]["style"] == ["waves", "embers"]


def test_alpha_is_kept():
    with client_for() as c:
        r = c.post("/api/v1/jobs", files=files(image_bytes(96, 64, mode="RGBA")), data={"style": "embers"})
        done = wait_final(c, r.json()["id"])
        img = decode(c.get(done["result_url"]).content)
        assert img.mode == "RGBA" and img.size == (96, 64)


def test_sync_stylize_returns_the_image():
    with client_for() as c:
        r = c.post("/api/v1/stylize", files=files(image_bytes(96, 72)), data={"style": "swirls"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png" and len(r.headers["x-job-id"]) == 22
        assert decode(r.content).size == (96, 72)
        # tiny photos are enlarged to the 64 px minimum the stylizers need
        r = c.post("/api/v1/stylize", files=files(image_bytes(24, 12)), data={"style": "swirls"})
        assert decode(r.content).size == (64, 32)
        r = c.post("/api/v1/stylize", files=files(image_bytes(48, 36)), data={"style": "swirls", "format": "jpeg"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        for key, value in (("method", "optimize"), ("quality", "best")):
            r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls", key: value})
            assert r.status_code == 422 and "/api/v1/jobs" in r.text


def test_the_old_field_names_still_work():
    """strength / keep_colors / quality=best were the web's words for the library's alpha /
    preserve_color / method=optimize: clients written then keep working (deprecated)."""
    stub = Stub(modes={"fast": True, "best": True})  # an engine of that time says best too
    with client_for(stub) as c:
        assert c.get("/api/v1/health").json()["modes"] == {"fast": True, "optimize": True}
        r = c.post("/api/v1/jobs", files=files(image_bytes()),
                   data={"style": "swirls", "strength": "0.25", "keep_colors": "histogram", "quality": "best"})
        assert r.status_code == 202, r.text
        done = wait_final(c, r.json()["id"])
        assert done["status"] == "succeeded" and (done["method"], done["quality"]) == ("optimize", "best")
        assert {k: done["options"][k] for k in ("alpha", "preserve_color", "method")} == \
            {"alpha": 0.25, "preserve_color": "histogram", "method": "optimize"}
        task = stub.tasks[0]
        assert (task.alpha, task.preserve_color, task.method) == (0.25, "histogram", "optimize")
        params = {"width": 4000, "height": 3000, "size": 3840}
        old = c.get("/api/v1/estimate", params={**params, "quality": "best"}).json()
        assert old == c.get("/api/v1/estimate", params={**params, "method": "optimize"}).json()
        assert old["width"] == 1024  # optimize's limit, not fast's


def test_job_ids_are_random_and_unique():
    with client_for() as c:
        ids = {c.post("/api/v1/jobs", files=files(image_bytes(16, 16)), data={"style": "swirls"}).json()["id"]
               for _ in range(6)}
        assert len(ids) == 6
        assert all(len(i) == 22 for i in ids)


# --- progress, queue, cancel -----------------------------------------------------------------
class FakeClock:
    """The job manager's ``time`` module, moved on by the test alone (no sleeps, no wall clock)."""

    def __init__(self):
        self.now = float(int(time.time()))

    def time(self) -> float:
        return self.now


def test_progress_and_eta_while_running(monkeypatch):
    from painterly.web import jobs

    clock = FakeClock()
    monkeypatch.setattr(jobs, "time", clock)
    gate = threading.Event()
    stub = Stub(gate=gate)
    with client_for(stub) as c:
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"})
        job_id = r.json()["id"]
        assert stub.started.wait(5)
        clock.now += 3.0  # the job has run 3 s and is half done
        body = c.get(f"/api/v1/jobs/{job_id}").json()
        assert body["status"] == "running" and body["percent"] == 50
        assert body["elapsed_seconds"] == 3.0  # since the job started, not since it was queued
        assert body["eta_seconds"] == 3.0  # 3 s for the first half: 3 s for the second
        r = c.get(f"/api/v1/jobs/{job_id}/result")
        assert r.status_code == 409 and "running" in r.json()["detail"]
        gate.set()
        assert wait_final(c, job_id)["status"] == "succeeded"


def test_queue_limit_answers_429_and_keeps_accepted_jobs():
    gate = threading.Event()
    stub = Stub(gate=gate)
    with client_for(stub, workers=1, max_queue=2) as c:
        accepted = []
        for _ in range(3):  # 1 running + 2 queued
            r = c.post("/api/v1/jobs", files=files(image_bytes(16, 16)), data={"style": "swirls"})
            assert r.status_code == 202
            accepted.append(r.json()["id"])
        assert stub.started.wait(5)
        queued = c.get(f"/api/v1/jobs/{accepted[2]}").json()
        assert queued["status"] == "queued" and queued["queue_position"] == 2 and queued["eta_seconds"] > 0
        r = c.post("/api/v1/jobs", files=files(image_bytes(16, 16)), data={"style": "swirls"})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "busy" in r.json()["detail"]
        r = c.post("/api/v1/stylize", files=files(image_bytes(16, 16)), data={"style": "swirls"})
        assert r.status_code == 429
        gate.set()
        assert [wait_final(c, j)["status"] for j in accepted] == ["succeeded"] * 3
        stats = c.get("/api/v1/health").json()["queue"]
        assert stats["accepted"] == 3 and stats["rejected"] == 2 and stats["succeeded"] == 3
        # room again
        r = c.post("/api/v1/jobs", files=files(image_bytes(16, 16)), data={"style": "swirls"})
        assert r.status_code == 202


def test_cancel_queued_and_running_jobs():
    gate = threading.Event()
    stub = Stub(gate=gate)
    with client_for(stub, workers=1, max_queue=4) as c:
        running = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()["id"]
        queued = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()["id"]
        assert stub.started.wait(5)
        r = c.delete(f"/api/v1/jobs/{queued}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = c.post(f"/api/v1/jobs/{running}/cancel")
        assert r.status_code == 200
        assert wait_final(c, running)["status"] == "cancelled"
        assert len(stub.tasks) == 1  # the queued job never ran
        r = c.get(f"/api/v1/jobs/{queued}/result")
        assert r.status_code == 409 and "cancelled" in r.json()["detail"]
        # cancelling a finished job changes nothing
        gate.set()
        done = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()["id"]
        assert wait_final(c, done)["status"] == "succeeded"
        assert c.delete(f"/api/v1/jobs/{done}").json()["status"] == "succeeded"
        assert c.get(f"/api/v1/jobs/{done}/result").status_code == 200


def test_sync_refuses_what_the_queue_would_delay_past_its_limit():
    gate = threading.Event()
    stub = Stub(gate=gate)
    with client_for(stub, sync_timeout=60.0) as c:
        manager = c.app_state.manager
        manager.calibration["fast"] = 25.0 / manager.planned("fast", 30, 40)  # 25 s per 40x30 job
        running = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()["id"]
        assert stub.started.wait(5)
        queued = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()["id"]
        # 25 s queued ahead + its own 25 s > 0.8 x 60 s: retrying later is the answer
        r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert manager.stats()["accepted"] == 2  # refused before it was queued
        gate.set()
        assert [wait_final(c, j)["status"] for j in (running, queued)] == ["succeeded"] * 2


def test_sync_run_longer_than_its_limit_is_handed_back_at_once():
    gate = threading.Event()
    stub = Stub(gate=gate, hold_at=0.0)  # no progress yet: the ETA is the server's estimate
    # The job cannot finish while the gate is shut, and the sync limit (an hour) cannot pass:
    # a 202 that arrives with the gate still shut was handed back without waiting for either.
    # A server that waited would hang; the guard then opens the gate after a minute, the job
    # finishes and the answer is a 200 image instead: a failure, not a hung test.
    guard = threading.Timer(60, gate.set)
    with client_for(stub, sync_timeout=3600.0) as c:
        c.app_state.manager.calibration["fast"] = 1e5  # hours for this photo: no point waiting
        guard.start()
        try:
            r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls"})
        finally:
            guard.cancel()
        assert r.status_code == 202 and not gate.is_set(), r.text
        job = r.json()
        assert r.headers["location"] == f"/api/v1/jobs/{job['id']}" and job["eta_seconds"] > 3600
        gate.set()
        assert wait_final(c, job["id"])["status"] == "succeeded"


def test_sync_slower_than_its_limit_hands_back_the_job():
    gate = threading.Event()
    stub = Stub(gate=gate)
    with client_for(stub, sync_timeout=0.3) as c:
        c.app_state.manager.calibration["fast"] = 1e-3  # looks quick, then is not
        r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/api/v1/jobs/{job['id']}" and job["status"] == "running"
        gate.set()
        done = wait_final(c, job["id"])
        assert done["status"] == "succeeded"
        assert c.get(done["result_url"]).status_code == 200


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("data, field, words", [
    ({"style": "swirls", "colour": "1"}, "colour", "unknown option"),
    ({"style": "swirls", "alpha": "2"}, "alpha", "less than or equal"),
    ({"style": "swirls", "alpha": "strong"}, "alpha", "number"),
    ({"style": "swirls", "method": "ultra"}, "method", "optimize"),
    ({"style": "swirls", "preserve_color": "maybe"}, "preserve_color", "luminance"),
    ({"style": "swirls", "strength": "2"}, "strength", "less than or equal"),  # the old names: their own errors
    ({"style": "swirls", "quality": "ultra"}, "quality", "optimize"),
    ({"style": "swirls", "alpha": "1", "strength": "1"}, "strength", "old name of alpha"),
    ({"style": "swirls", "size": "10"}, "size", "greater than or equal"),
    ({"style": "swirls", "size": "5000"}, "size", "at most"),
    ({"style": "swirls", "format": "gif"}, "format", "png"),
    ({"style": "swirls", "style_weights": "-1"}, "style_weights", ">= 0"),
    ({"style": "picasso"}, "style", "unknown built-in style"),
    ({}, "style", "send a style"),
])
def test_bad_options_are_422(data, field, words):
    with client_for() as c:
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data=data)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert any(d["loc"][-1] == field and words in d["msg"] for d in detail), detail


@pytest.mark.parametrize("field, value", [("alpha", "nan"), ("alpha", "-inf"), ("style_weights", "1,inf"),
                                          ("style_weights", "nan,1"), ("style_weights", "1e308,1e308"),
                                          ("size", "1e400"), ("seed", "inf")])
@pytest.mark.parametrize("endpoint", ["/api/v1/jobs", "/api/v1/stylize"])
def test_non_finite_numbers_are_422_before_anything_runs(endpoint, field, value):
    engine = Stub()
    with client_for(engine) as c:
        data = {"style": ["swirls", "waves"] if field == "style_weights" else "swirls", field: value}
        r = c.post(endpoint, files=files(image_bytes()), data=data)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][1] == field  # ("body", field[, index])
        assert engine.tasks == [] and c.app_state.manager.stats()["jobs_kept"] == 0


def test_missing_content_duplicate_option_and_unknown_file_field_are_422():
    with client_for() as c:
        r = c.post("/api/v1/jobs", data={"style": "swirls"})
        assert r.status_code == 422 and "content" in r.text
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls", "alpha": ["0.1", "0.2"]})
        assert r.status_code == 422 and "more than once" in r.text
        r = c.post("/api/v1/jobs", files=files(image_bytes()) + [("mask", ("m.png", image_bytes(), "image/png"))],
                   data={"style": "swirls"})
        assert r.status_code == 422 and "unknown option 'mask'" in r.text
        r = c.post("/api/v1/jobs", json={"content": "x", "style": "swirls"})
        assert r.status_code == 422


@pytest.mark.parametrize("payload, status, words", [
    (b"just some text, not a picture", 400, "not an image"),
    (b"", 400, "empty"),
    ("truncated", 400, "truncated"),
    ("bomb", 413, "over the limit"),
    ("big", 413, "pixels is over the limit"),
])
def test_bad_images(payload, status, words):
    if payload == "truncated":
        whole = image_bytes(64, 64, fmt="JPEG")
        payload = whole[: len(whole) // 2]
    elif payload == "bomb":
        payload = png_header_bomb(60_000, 60_000)
    elif payload == "big":
        payload = image_bytes(120, 100, color=(1, 2, 3))
    with client_for(max_pixels=10_000) as c:
        for where in ("content", "style"):
            good = image_bytes(20, 20)
            parts = files(payload, good) if where == "content" else files(good, payload)
            r = c.post("/api/v1/jobs", files=parts)
            assert r.status_code == status, (where, r.text)
            detail = r.json()["detail"]
            assert words in detail and detail.startswith(where), detail
            assert "Traceback" not in r.text


def test_upload_byte_limit_is_413():
    with client_for(max_upload_bytes=50_000) as c:
        big = os.urandom(60_000)
        r = c.post("/api/v1/jobs", files=files(big), data={"style": "swirls"})
        assert r.status_code == 413 and "too large" in r.json()["detail"]

        # without a Content-Length (chunked upload) the limit holds while streaming
        def chunks():
            yield b"--xx\r\nContent-Disposition: form-data; name=\"content\"; filename=\"a.png\"\r\n\r\n"
            for _ in range(10):
                yield b"\0" * 10_000
            yield b"\r\n--xx--\r\n"

        r = c.post("/api/v1/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xx"})
        assert r.status_code == 413
        # still healthy afterwards
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 202


def test_failures_never_leak_a_traceback():
    stub = Stub(fail=RuntimeError("secret /etc/shadow details"))
    with client_for(stub) as c:
        job = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()
        done = wait_final(c, job["id"])
        assert done["status"] == "failed"
        assert "internal error" in done["error"] and "secret" not in done["error"]
        r = c.get(f"/api/v1/jobs/{job['id']}/result")
        assert r.status_code == 409 and "secret" not in r.text
        r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 500 and "secret" not in r.text and "Traceback" not in r.text
        assert r.json() == {"detail": "internal error while stylizing (logged on the server)"}
    stub = Stub(fail=StyleTransferError("style image is too small for this model"))
    with client_for(stub) as c:
        job = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()
        assert wait_final(c, job["id"])["error"] == "style image is too small for this model"
        r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 400 and r.json()["detail"] == "style image is too small for this model"


def test_unexpected_server_error_is_a_plain_500(monkeypatch):
    with client_for() as c:
        def boom(*a, **k):
            raise KeyError("internal detail")
        monkeypatch.setattr(c.app_state.manager, "submit", boom)
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 500
        assert r.json() == {"detail": "internal server error"}
        assert c.get("/api/v1/health").status_code == 200


def test_unavailable_mode_is_503():
    with client_for(Stub(modes={"fast": False, "optimize": True})) as c:
        assert c.get("/api/v1/health").json()["default_method"] == "optimize"
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 202 and r.json()["method"] == "optimize"
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls", "method": "fast"})
        assert r.status_code == 503 and "method=optimize" in r.json()["detail"]
        r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 503


# --- job ids, paths, TTL ---------------------------------------------------------------------
def test_unknown_ids_and_path_traversal_are_404(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(image_bytes())
    with client_for(result_dir=str(tmp_path / "results")) as c:
        for job_id in ["nope", "A" * 22, "..%2F..%2Fsecret", "%2e%2e%2fsecret", "..%2F" * 8 + "etc%2Fpasswd",
                       str(secret).replace("/", "%2F")]:
            for suffix in ("", "/result"):
                r = c.get(f"/api/v1/jobs/{job_id}{suffix}")
                assert r.status_code == 404, (job_id, suffix, r.status_code)
                assert r.headers["content-type"].startswith("application/json")
            assert c.delete(f"/api/v1/jobs/{job_id}").status_code == 404
        r = c.get("/api/v1/jobs/../../secret.png")
        assert r.status_code == 404
        # results land inside the result folder, named by the job id only
        job = c.post("/api/v1/jobs", files=[("content", ("../../evil.png", image_bytes(), "image/png"))],
                     data={"style": "swirls"}).json()
        wait_final(c, job["id"])
        assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [f"{job['id']}.png"]
        assert not (tmp_path / "evil.png").exists()


def test_results_expire_after_ttl():
    with client_for(result_ttl=0.3) as c:
        manager = c.app_state.manager
        job = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()
        wait_final(c, job["id"])
        path = manager.dir / f"{job['id']}.png"
        assert path.is_file()
        deadline = time.time() + 5
        while path.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert not path.exists()
        assert c.get(f"/api/v1/jobs/{job['id']}").status_code == 404
        assert c.get(f"/api/v1/jobs/{job['id']}/result").status_code == 404
        result_dir = manager.dir
    assert not result_dir.exists()  # the temporary folder goes with the server


# --- API key and CORS ------------------------------------------------------------------------
def test_api_key():
    with client_for(api_key="s3cret") as c:
        assert c.get("/api/v1/health").json()["auth_required"] is True
        assert c.get("/api/v1/styles").status_code == 200  # public
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}, headers={"X-API-Key": "wrong"})
        assert r.status_code == 401
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}, headers={"X-API-Key": "s3cret"})
        assert r.status_code == 202
        job_id = r.json()["id"]
        assert c.get(f"/api/v1/jobs/{job_id}").status_code == 401
        assert c.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        r = c.post("/api/v1/stylize", files=files(image_bytes()), data={"style": "swirls"},
                   headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200


def test_api_key_from_environment(monkeypatch):
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert settings_from_args(parser.parse_args(["serve"])).api_key == "from-env"
    assert settings_from_args(parser.parse_args(["serve", "--api-key", "flag"])).api_key == "flag"
    monkeypatch.delenv(API_KEY_ENV)
    assert settings_from_args(parser.parse_args(["serve"])).api_key is None


def test_cors():
    with client_for(cors_origins=["https://app.example"]) as c:
        r = c.get("/api/v1/styles", headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.get("/api/v1/styles", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        r = c.options("/api/v1/jobs", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "X-API-Key"})
        assert r.status_code == 200 and "POST" in r.headers["access-control-allow-methods"]
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls", "x": "1"},
                   headers={"Origin": "https://app.example"})
        assert r.status_code == 422 and r.headers["access-control-allow-origin"] == "https://app.example"
    with client_for() as c:
        r = c.get("/api/v1/styles", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in r.headers


# --- the command -----------------------------------------------------------------------------
def test_serve_parser_defaults_and_validation(capsys):
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000) and args.workers >= 1 and callable(args.func)
    args = parser.parse_args(["serve", "--port", "0", "--workers", "2", "--queue-limit", "5", "--cors-origin", "a",
                              "--cors-origin", "b", "--max-upload-mb", "2", "--result-ttl", "60"])
    s = settings_from_args(args)
    assert (s.workers, s.max_queue, s.cors_origins, s.max_upload_bytes, s.result_ttl) == (2, 5, ["a", "b"], 2 << 20, 60)
    assert (s.max_size, s.max_fast_size) == (1024, 3840)
    s = settings_from_args(parser.parse_args(["serve", "--max-fast-size", "2048", "--max-size", "768"]))
    assert (s.max_size, s.max_fast_size, s.size_choices("fast"), s.size_choices("optimize")) == \
        (768, 2048, [512, 1024, 2048], [512, 768])
    for bad in (["--workers", "0"], ["--port", "70000"], ["--result-ttl", "-1"], ["--queue-limit", "x"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", *bad])


def test_serve_refuses_missing_fast_model(tmp_path, capsys):
    from painterly.web import serve_command

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    threads = torch.get_num_threads()
    try:
        args = parser.parse_args(["serve", "--port", "0", "--fast-model", str(tmp_path / "none.safetensors")])
        assert serve_command(args) == 2
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err


def test_serve_backend_flag_reaches_the_fast_mode(monkeypatch):
    from painterly.web import engine_from_args

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    assert engine_from_args(parser.parse_args(["serve"])).fast_options.backend == "torch"
    if importlib.util.find_spec("onnxruntime") is not None:
        engine = engine_from_args(parser.parse_args(["serve", "--backend", "onnxruntime"]))
        assert engine.fast_options.backend == "onnxruntime"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ValueError, match="needs the 'onnxruntime' package"):
        engine_from_args(parser.parse_args(["serve", "--backend", "onnxruntime"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--backend", "tensorflow"])


def test_python_m_serves_over_real_http(tmp_path):
    """`python -m painterly.web` on a free port answers real HTTP, then stops on SIGINT."""
    import httpx

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop(API_KEY_ENV, None)
    proc = subprocess.Popen([sys.executable, "-m", "painterly.web", "--port", "0", "--log-level", "warning",
                             "--result-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("painterly: serving on http://127.0.0.1:"), line
        url = line.split()[3]
        deadline = time.time() + 20
        while True:
            try:
                r = httpx.get(url + "/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.time() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert httpx.get(url + "/").status_code == 200
        # a second server on the same port is a one-line error, not a traceback
        port = url.rsplit(":", 1)[1]
        other = subprocess.run([sys.executable, "-m", "painterly.web", "--port", port],
                               capture_output=True, text=True, timeout=60)
        assert other.returncode == 2 and "cannot listen" in other.stderr and "Traceback" not in other.stderr
    finally:
        proc.send_signal(2)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0


# --- issue 11: checks at submission, the demo style's name, estimates, sizes ------------------
def test_a_strip_that_can_only_fail_is_refused_at_submission():
    stub = Stub()
    with client_for(stub) as c:
        strip = image_bytes(3000, 20, color=(10, 200, 30))
        r = c.post("/api/v1/jobs", files=files(strip), data={"style": "swirls"})
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "content"] and "too narrow" in err["msg"] and "size=2400" in err["msg"], err
        r = c.post("/api/v1/stylize", files=files(strip), data={"style": "swirls"})
        assert r.status_code == 422
        # at a size where its short side is 16 px it is fine
        r = c.post("/api/v1/jobs", files=files(strip), data={"style": "swirls", "size": "2400"})
        assert r.status_code == 202, r.text
        assert (r.json()["width"], r.json()["height"]) == (2400, 16)
        # optimize stops at 1024 px, where this strip is 1024x7: no size= that works, so crop it
        r = c.post("/api/v1/jobs", files=files(strip), data={"style": "swirls", "method": "optimize", "size": "1024"})
        assert r.status_code == 422 and "crop" in r.text and "size=" not in r.text
        # a strip no size can save; a style strip
        r = c.post("/api/v1/jobs", files=files(image_bytes(400, 8)), data={"style": "swirls", "size": "400"})
        assert r.status_code == 422 and "crop" in r.text
        r = c.post("/api/v1/jobs", files=files(image_bytes(), image_bytes(2000, 10)))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "style"]
        assert wait_final(c, c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"}).json()["id"])
    assert len(stub.tasks) == 2  # only the two good requests ran


def test_demo_style_is_swirls_and_the_old_name_still_works():
    stub = Stub()
    with client_for(stub) as c:
        names = [s["name"] for s in c.get("/api/v1/styles").json()]
        assert "swirls" in names and "swirl" not in names
        r = c.post("/api/v1/jobs", files=files(image_bytes()), data={"style": "swirl"})
        assert r.status_code == 202, r.text
        assert wait_final(c, r.json()["id"])["options"]["style"] == ["swirls"]
        assert torch.equal(stub.tasks[0].styles[0], stub.tasks[0].styles[0])
        a, b = c.get("/api/v1/styles/swirl/thumbnail"), c.get("/api/v1/styles/swirls/thumbnail")
        assert a.status_code == b.status_code == 200 and a.content == b.content
    from painterly.demo import swirl_style
    from painterly.web.styles import style_array

    demo = (swirl_style(512)[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(style_array("swirls").astype(np.float64) - demo).max() <= 1  # the CLI's picture


def test_estimates_follow_the_photo_and_size():
    with client_for() as c:
        manager = c.app_state.manager
        manager.calibration.update(fast=2.0, optimize=10.0)  # this server takes 2x / 10x the plan's time
        small = c.get("/api/v1/estimate", params={"width": 160, "height": 120, "size": 512, "method": "fast"}).json()
        assert (small["width"], small["height"]) == (160, 120)  # never enlarged
        assert small["seconds"] == pytest.approx(2.0 * planned_seconds("fast", 120, 160), abs=0.05)
        big = c.get("/api/v1/estimate", params={"width": 4000, "height": 3000, "size": 3840}).json()
        assert (big["width"], big["height"]) == (3840, 2880) and big["seconds"] > 10 * small["seconds"]
        slow = c.get("/api/v1/estimate", params={"width": 4000, "height": 3000, "size": 3840, "method": "optimize"})
        assert slow.json()["width"] == 1024  # optimize's limit
        assert c.get("/api/v1/estimate", params={"width": 0, "height": 10}).status_code == 422


def test_size_limits_per_method():
    with client_for() as c:
        health = c.get("/api/v1/health").json()
        assert health["size_choices"] == {"fast": [512, 1024, 2048, 3840], "optimize": [512, 768, 1024]}
        assert health["limits"]["max_fast_size"] == 3840 and health["limits"]["max_size"] == 1024
        photo = image_bytes(400, 300)
        r = c.post("/api/v1/jobs", files=files(photo), data={"style": "swirls", "size": "3840", "method": "fast"})
        assert r.status_code == 202
        r = c.post("/api/v1/jobs", files=files(photo), data={"style": "swirls", "size": "2048", "method": "optimize"})
        assert r.status_code == 422 and "at most 1024 for method=optimize" in r.text
    with client_for(max_fast_size=1500, max_size=600, default_size=512) as c:
        assert c.get("/api/v1/health").json()["size_choices"] == {"fast": [512, 1024], "optimize": [512]}


def live_server(**settings):
    """A real uvicorn server on a free loopback port (the TestClient never closes sockets)."""
    from browser_env import serving

    return serving(create_app(Settings(workers=1, **settings), Stub()))


def _send_then_read(url: str, head: bytes, body_parts) -> tuple[OSError | None, bytes]:
    """A plain HTTP/1.1 client that sends its whole request before reading the answer (as
    Python's http.client/requests and many app clients do); returns (send error, answer)."""
    import socket

    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        error = None
        try:
            sock.sendall(head)
            for part in body_parts:
                sock.sendall(part)
        except OSError as exc:
            error = exc
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return error, answer


def test_over_limit_uploads_get_a_readable_413_over_real_http():
    """Over the limit by Content-Length or while streaming a chunked body: the server reads
    and drops the rest (up to 4x the limit), so the client finishes sending without a
    connection reset and reads the 413 with its JSON; the server stays usable."""
    import httpx

    limit = 2 * 1024 * 1024  # the body (3.5x) is more than the sockets buffer, less than the drain limit
    body = b"--xx\r\nContent-Disposition: form-data; name=\"content\"; filename=\"a.png\"\r\n\r\n" + \
        os.urandom(int(3.5 * limit)) + b"\r\n--xx--\r\n"
    pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    start = b"POST /api/v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=xx\r\n"
    with live_server(max_upload_bytes=limit) as url:
        for head, parts in [
            (start + b"Content-Length: %d\r\n\r\n" % len(body), pieces),
            (start + b"Transfer-Encoding: chunked\r\n\r\n",
             [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]),
        ]:
            error, answer = _send_then_read(url, head, parts)
            assert error is None, f"the client could not finish sending: {error!r}"
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line.startswith(b"HTTP/1.1 413"), answer[:200]
            assert b'"detail":"upload too large' in rest
        with httpx.Client(timeout=20) as client:
            r = client.post(url + "/api/v1/jobs", content=body,
                            headers={"content-type": "multipart/form-data; boundary=xx"})
            assert r.status_code == 413 and "too large" in r.json()["detail"]
            r = client.post(url + "/api/v1/jobs", files=files(image_bytes()), data={"style": "swirls"})
            assert r.status_code == 202


def test_the_first_measured_run_replaces_the_plans_figures():
    with client_for() as c:
        manager = c.app_state.manager
        assert "fast" not in manager.calibration  # the plan as it is (a factor of 1) until a run is measured
        wait_final(c, c.post("/api/v1/jobs", files=files(image_bytes(64, 48)), data={"style": "swirls"}).json()["id"])
        first = manager.calibration["fast"]
        assert first < 1 / 20  # the stub takes milliseconds: the plan's 1 is gone, not averaged in
        health = c.get("/api/v1/health").json()
        assert health["estimated_seconds"]["fast"] < 1


def test_health_estimates_of_the_real_engine_before_any_run():
    with client_for(LibraryEngine()) as c:  # nothing is loaded until a job runs
        est = c.get("/api/v1/health").json()["estimated_seconds"]
        # a 512x384 result: one feed-forward pass vs the optimiser's whole schedule
        assert 1 < est["fast"] < 30 < est["optimize"] < 300


def test_big_jpeg_with_exif_rotation_is_decoded_reduced_and_upright():
    """A big camera JPEG is decoded at reduced scale (image.load_image's reduce_to) and still
    turned upright by its EXIF orientation, as the CLI does."""
    arr = np.zeros((1800, 2400, 3), np.uint8)
    arr[:, :1200] = (220, 30, 30)  # left half red, right half blue, as stored
    arr[:, 1200:] = (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: red on top
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90, exif=exif.tobytes())
    with client_for(Stub()) as c:
        r = c.post("/api/v1/jobs", files=files(buf.getvalue()),
                   data={"style": "swirls", "size": "512", "alpha": "0"})
        done = wait_final(c, r.json()["id"])
        assert (done["width"], done["height"]) == (384, 512)
        img = np.asarray(decode(c.get(done["result_url"]).content), np.float64)
    assert img.shape == (512, 384, 3)
    assert img[:200, :, 0].mean() > 180 and img[:200, :, 2].mean() < 60  # red on top
    assert img[-200:, :, 2].mean() > 180 and img[-200:, :, 0].mean() < 60  # blue below


def test_jpeg_result_of_a_transparent_photo_is_on_white():
    arr = np.zeros((40, 60, 4), np.uint8)
    arr[..., :3] = (200, 20, 20)
    arr[:, 30:, 3] = 255  # left half fully transparent
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, "PNG")
    with client_for() as c:
        r = c.post("/api/v1/jobs", files=files(buf.getvalue()), data={"style": "swirls", "alpha": "0"})
        done = wait_final(c, r.json()["id"])
        png = decode(c.get(done["result_url"]).content)
        jpeg = np.asarray(decode(c.get(done["result_url"], params={"format": "jpeg"}).content), np.float64)
    assert png.mode == "RGBA" and np.asarray(png)[:, :25, 3].max() == 0
    assert jpeg[:, :25].min() > 235  # the transparent half is white
    assert abs(jpeg[:, 40:, 0].mean() - 200) < 10 and jpeg[:, 40:, 1].mean() < 40
