"""The web engine's adapters onto the library stylizers, the job manager on its own, and the
built-in styles. The stylizers are replaced by recording fakes here (their own tests live
elsewhere), except one slow end-to-end run of the real optimisation stylizer over HTTP.
"""
from __future__ import annotations

import io
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer.errors import StyleTransferError
from styletransfer.web import styles as builtin
from styletransfer.web.config import Settings
from styletransfer.web.engine import JobCancelled, LibraryEngine, Task
from styletransfer.web.jobs import JOB_ID_RE, JobManager, QueueFull


def _task(**kw) -> Task:
    base = dict(content=torch.rand(1, 3, 32, 48), styles=[torch.rand(1, 3, 40, 40)])
    base.update(kw)
    return Task(**base)


# --- adapters --------------------------------------------------------------------------------
def test_best_mode_maps_options_and_reports_progress(monkeypatch):
    from styletransfer.stylizers import optimize

    calls = {}

    def fake(content, styles, options, callback=None, encoder=None):
        calls["options"] = options
        for step in range(1, 5):
            callback(step, 4, 1.0 / step)
        return torch.full_like(content, 0.25)

    monkeypatch.setattr(optimize, "stylize_optimize", fake)
    engine = LibraryEngine(device="cpu", best_overrides={"steps": 7, "not_an_option": 1})
    seen: list[float] = []
    out = engine.run(_task(quality="best", strength=0.5, keep_colors="histogram", seed=3,
                           style_weights=[1.0]), seen.append)
    assert torch.equal(out, torch.full((1, 3, 32, 48), 0.25))
    opts = calls["options"]
    default_weight = optimize.OptimizeOptions().style_weight
    assert opts.style_weight == pytest.approx(default_weight * 0.1)  # strength 0.5 -> 1/10
    assert (opts.preserve_color, opts.seed, opts.steps, opts.device, opts.style_weights) == ("histogram", 3, 7, "cpu", [1.0])
    assert seen[0] == 0.0 and seen[-1] == 1.0 and 0.5 in seen and seen == sorted(seen)


def test_best_mode_cancels_through_the_callback(monkeypatch):
    from styletransfer.stylizers import optimize

    steps_run = []

    def fake(content, styles, options, callback=None, encoder=None):
        for step in range(1, 101):
            steps_run.append(step)
            callback(step, 100, 0.0)
        return content

    monkeypatch.setattr(optimize, "stylize_optimize", fake)

    def progress(fraction):
        if fraction >= 0.1:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        LibraryEngine().run(_task(quality="best"), progress)
    assert len(steps_run) == 10


def test_fast_mode_maps_options(monkeypatch):
    from styletransfer.stylizers import fast

    calls = {}

    def fake(content, styles, options=None, encoder=None, decoder=None):
        calls["options"], calls["n"] = options, len(styles)
        return torch.zeros_like(content)

    monkeypatch.setattr(fast, "stylize_fast", fake)
    monkeypatch.setattr(fast, "default_model_available", lambda: True)
    engine = LibraryEngine(device="cpu")
    assert engine.modes()["fast"] is True
    seen: list[float] = []
    engine.run(_task(styles=[torch.rand(1, 3, 8, 8)] * 2, style_weights=[2.0, 1.0], strength=0.3,
                     keep_colors="luminance"), seen.append)
    o = calls["options"]
    assert (o.alpha, o.style_weights, o.preserve_color, o.device, calls["n"]) == (0.3, [2.0, 1.0], "luminance", "cpu", 2)
    assert seen[-1] == 1.0
    monkeypatch.setattr(fast, "default_model_available", lambda: False)
    assert engine.modes()["fast"] is False
    with pytest.raises(StyleTransferError, match="not available"):
        engine.run(_task(), seen.append)


def test_strength_zero_returns_the_photo():
    task = _task(strength=0.0)
    out = LibraryEngine().run(task, lambda f: None)
    assert torch.equal(out, task.content) and out is not task.content


# --- job manager -----------------------------------------------------------------------------
class Gate:
    def __init__(self):
        self.open = threading.Event()
        self.running = threading.Semaphore(0)

    def modes(self):
        return {"fast": True, "best": True}

    def run(self, task, progress):
        self.running.release()
        while not self.open.wait(0.005):
            progress(0.3)
        return task.content


def test_manager_admission_order_and_no_drops():
    gate = Gate()
    manager = JobManager(gate, Settings(workers=2, max_queue=3))
    manager.start()
    try:
        jobs = [manager.submit(_task(), {}) for _ in range(5)]  # 2 running + 3 queued
        with pytest.raises(QueueFull) as info:
            manager.submit(_task(), {})
        assert 1 <= info.value.retry_after <= 60
        assert gate.running.acquire(timeout=5) and gate.running.acquire(timeout=5)
        assert [manager.describe(j)["queue_position"] for j in jobs[2:]] == [1, 2, 3]
        assert all(JOB_ID_RE.match(j.id) for j in jobs)
        gate.open.set()
        for job in jobs:
            assert job.done_event.wait(5)
        assert [j.state for j in jobs] == ["succeeded"] * 5
        assert all(manager.result_file(j) is not None for j in jobs)
        assert all(j.task is None for j in jobs)  # images freed once done
        assert manager.stats()["succeeded"] == 5 and manager.stats()["rejected"] == 1
    finally:
        manager.stop()
    assert not manager.dir.exists()


def test_manager_rejects_foreign_paths_and_bad_ids(tmp_path):
    manager = JobManager(Gate(), Settings(workers=1, result_dir=str(tmp_path / "r")))
    for bad in ["../x", "a/b", "", "x" * 23, None, "A" * 21 + "/"]:
        assert manager.get(bad) is None
    job = manager.submit(_task(), {})
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x")
    job.result_path = outside
    assert manager.result_file(job) is None
    manager.stop()
    assert (tmp_path / "r").exists()  # a folder the user gave is not deleted


# --- built-in styles -------------------------------------------------------------------------
def test_builtin_styles_are_deterministic_and_colourful():
    assert len(builtin.names()) >= 5
    for name in builtin.names():
        arr = builtin.style_array(name)
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 and min(arr.shape[:2]) >= 256
        assert arr.std() > 20, f"{name} is too flat to be a style"
        thumb = Image.open(io.BytesIO(builtin.thumbnail_jpeg(name)))
        assert thumb.format == "JPEG" and thumb.size == (builtin.THUMB, builtin.THUMB)
    for name in ("waves", "halftone", "embers"):  # generated, not loaded: same seed, same picture
        assert np.array_equal(builtin.style_array(name), builtin.STYLES[name].make())


# --- the real optimisation stylizer, end to end over HTTP ------------------------------------
@pytest.mark.slow
def test_real_best_mode_over_http():
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from styletransfer.web import create_app

    engine = LibraryEngine(device="cpu", best_overrides={"steps": 2, "min_steps": 1})
    if not engine.modes()["best"]:
        pytest.skip("optimisation stylizer not installed")
    photo = np.zeros((64, 64, 3), np.uint8)
    photo[:, :32] = (200, 60, 40)
    photo[:, 32:] = (40, 90, 200)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    app = create_app(Settings(workers=1), engine)
    with TestClient(app) as c:
        r = c.post("/api/v1/jobs", files={"content": ("p.png", buf.getvalue(), "image/png")},
                   data={"style": "waves", "quality": "best", "size": "64"})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.time() + 240
        while (body := c.get(f"/api/v1/jobs/{job_id}").json())["status"] not in ("succeeded", "failed"):
            assert time.time() < deadline
            time.sleep(0.2)
        assert body["status"] == "succeeded", body
        assert body["percent"] == 100
        img = np.asarray(Image.open(io.BytesIO(c.get(body["result_url"]).content)), np.float64)
    # The server's result is the stylizer's own output for the same inputs and options.
    from styletransfer.image import from_array
    from styletransfer.stylizers.optimize import OptimizeOptions, stylize_optimize
    from styletransfer.web.app import _builtin_tensor

    expected = stylize_optimize(from_array(photo), [_builtin_tensor("waves")],
                                OptimizeOptions(steps=2, min_steps=1, device="cpu"))
    expected = expected[0].permute(1, 2, 0).numpy() * 255
    assert img.shape == (64, 64, 3)
    assert np.abs(img - expected).max() <= 1.0
    assert np.abs(img - photo).max() > 0  # and it is not just the photo
