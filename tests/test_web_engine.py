"""The web engine on the library's real stylizers with tiny stand-in networks (a VGG19 at 1/16
width and a small decoder written to a model file, as the trainer exports it), the job manager
on its own, and the built-in styles; one slow end-to-end run with the real VGG19 over HTTP.
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

from painterly import checkpoint, plan
from painterly.encoders.vgg import VGG19Encoder
from painterly.errors import StyleTransferError
from painterly.models import Decoder
from painterly.stylizers.fast import FastOptions, stylize_fast
from painterly.stylizers.optimize import OptimizeOptions, stylize_optimize
from painterly.web import styles as builtin
from painterly.web.config import Settings
from painterly.web.engine import JobCancelled, LibraryEngine, Task, planned_seconds
from painterly.web.jobs import JOB_ID_RE, JobManager, QueueFull


def _task(**kw) -> Task:
    gen = torch.Generator().manual_seed(0)
    base = dict(content=torch.rand(1, 3, 32, 48, generator=gen), styles=[torch.rand(1, 3, 40, 40, generator=gen)])
    base.update(kw)
    return Task(**base)


@pytest.fixture(scope="module")
def encoder() -> VGG19Encoder:
    torch.manual_seed(0)
    return VGG19Encoder(width_divisor=16).eval().requires_grad_(False)


@pytest.fixture()
def model_file(tmp_path):
    """A tiny relu4_1 decoder saved as ``painterly train`` exports one."""
    torch.manual_seed(1)
    dec = Decoder(in_channels=32, width=0.125)
    path = tmp_path / "model.safetensors"
    checkpoint.atomic_save({f"decoder.{k}": v for k, v in dec.state_dict().items()}, path, {"decoder": dec.config})
    return path


# --- the engine on the real stylizers --------------------------------------------------------
def test_optimize_mode_runs_the_optimiser_with_the_task_options(encoder, content_image, style_image):
    # the tiny random encoder's style term is huge: at this weight content and style compete
    base = OptimizeOptions(steps=[8], early_stop_tol=0, style_weight=1e-7)
    engine = LibraryEngine(device="cpu", encoder=encoder, best_options=base)
    task = Task(content=content_image, styles=[style_image], method="optimize", alpha=0.5, preserve_color="histogram",
                seed=3, style_weights=[1.0])
    seen: list[float] = []
    out = engine.run(task, seen.append)
    # alpha 0.5 -> a tenth of the style weight; the other task options go through as they are
    expected = stylize_optimize(content_image, [style_image], OptimizeOptions(
        steps=[8], early_stop_tol=0, style_weight=1e-8, preserve_color="histogram", seed=3, style_weights=[1.0],
        device="cpu"), encoder=encoder)
    assert out.shape == content_image.shape
    assert torch.allclose(out, expected, atol=1e-5)
    full = engine.run(Task(content=content_image, styles=[style_image], method="optimize", preserve_color="histogram",
                           seed=3), lambda f: None)
    assert (full - out).abs().max() > 1e-2  # alpha really changed the run
    assert (out - content_image).abs().max() > 1e-2  # and it is not just the photo
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 8


def test_optimize_mode_cancels_through_the_progress_callback(encoder):
    engine = LibraryEngine(device="cpu", encoder=encoder, best_options=OptimizeOptions(steps=40, early_stop_tol=0))
    calls = []

    def progress(fraction):
        calls.append(fraction)
        if fraction >= 0.1:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        engine.run(_task(method="optimize"), progress)
    assert 0.1 <= calls[-1] < 0.2  # stopped at the first step past 10 %, not at the end


def test_fast_mode_with_a_decoder_file(encoder, model_file):
    engine = LibraryEngine(device="cpu", encoder=encoder, fast_model=model_file)
    assert engine.modes() == {"fast": True, "optimize": True}
    task = _task(styles=[torch.rand(1, 3, 24, 24), torch.rand(1, 3, 40, 32)], style_weights=[2.0, 1.0],
                 alpha=0.3, preserve_color="luminance")
    seen: list[float] = []
    out = engine.run(task, seen.append)
    expected = stylize_fast(task.content, task.styles, FastOptions(
        alpha=0.3, style_weights=[2.0, 1.0], preserve_color="luminance", model=str(model_file), device="cpu"),
        encoder=encoder)
    assert out.shape == (1, 3, 32, 48) and torch.equal(out, expected)
    assert seen == [0.0, 1.0]
    other = engine.run(_task(styles=task.styles, style_weights=[2.0, 1.0], alpha=1.0), lambda f: None)
    assert (other - out).abs().max() > 1e-4  # the task's alpha is the AdaIN alpha


def test_the_engine_holds_one_fast_stylizer(encoder, model_file):
    """Built once from the model (or injected), reused for every task; the on-device mode is told
    its model file."""
    from painterly.stylizers.fast import FastStylizer

    engine = LibraryEngine(device="cpu", encoder=encoder, fast_model=model_file)
    first = engine.fast_stylizer
    engine.run(_task(), lambda f: None)
    assert engine.fast_stylizer is first and first.encoder is encoder
    assert engine.fast_model == str(model_file)
    given = FastStylizer.from_model(str(model_file), "cpu", encoder=encoder)
    engine = LibraryEngine(device="cpu", stylizer=given)
    assert engine.modes()["fast"] is True and engine.fast_stylizer is given and engine.fast_model == str(model_file)
    task = _task(alpha=0.6)
    torch.testing.assert_close(engine.run(task, lambda f: None), given(task.content, task.styles, FastOptions(alpha=0.6)))


def test_fast_mode_passes_its_base_options_through(encoder, model_file):
    engine = LibraryEngine(device="cpu", encoder=encoder, fast_options=FastOptions(tile=128, model=str(model_file)))
    task = _task(content=torch.rand(1, 3, 200, 136))
    out = engine.run(task, lambda f: None)
    expected = stylize_fast(task.content, task.styles, FastOptions(tile=128, model=str(model_file), device="cpu"),
                            encoder=encoder)
    assert torch.equal(out, expected)


def test_fast_mode_unavailable_without_a_model(encoder, tmp_path, monkeypatch):
    from painterly.stylizers import fast

    monkeypatch.setattr(fast, "default_model_available", lambda: False)
    assert LibraryEngine(encoder=encoder).modes() == {"fast": False, "optimize": True}
    engine = LibraryEngine(encoder=encoder, fast_model=tmp_path / "missing.safetensors")
    assert engine.modes()["fast"] is False
    with pytest.raises(StyleTransferError, match="not available"):
        engine.run(_task(), lambda f: None)
    monkeypatch.setattr(fast, "default_model_available", lambda: True)
    assert LibraryEngine(encoder=encoder).modes()["fast"] is True  # the built-in model counts


def test_alpha_zero_returns_the_photo():
    task = _task(alpha=0.0)
    out = LibraryEngine().run(task, lambda f: None)
    assert torch.equal(out, task.content) and out is not task.content


def test_planned_seconds_are_the_plans(monkeypatch):
    """The web's ETAs come from painterly.plan (one cost model): the optimiser's schedule with
    the engine's options, the fast plan without the load time a server does not pay per job."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    engine = LibraryEngine(best_options=OptimizeOptions(max_work=None))
    # 120x160: one scale of 100 steps; 512^2 uncapped: 100 steps at 256^2, 25 at 512^2
    per_mpx_step = plan.OPT_SECONDS_PER_MPX_STEP
    assert engine.planned_seconds("optimize", 120, 160) == pytest.approx(100 * 120 * 160 / 1e6 * per_mpx_step)
    assert engine.planned_seconds("optimize", 512, 512) == pytest.approx((100 * 256 ** 2 + 25 * 512 ** 2) / 1e6 * per_mpx_step)
    assert planned_seconds("optimize", 512, 512) < engine.planned_seconds("optimize", 512, 512)  # the default's 9 cap
    fast_plan = plan.plan_fast(1000, 2000, engine.fast_options, threads=2)
    assert engine.planned_seconds("fast", 1000, 2000) == pytest.approx(fast_plan.seconds - plan.FAST_LOAD_SECONDS)


def test_planned_seconds_follow_the_fast_models_factor(monkeypatch, encoder, model_file):
    engine = LibraryEngine(device="cpu", encoder=encoder, fast_model=model_file)
    before = engine.planned_seconds("fast", 480, 640)
    assert engine.fast_stylizer.levels  # loaded: its levels and encoder width are known now
    monkeypatch.setitem(plan.FAST_MODEL_TIME_FACTORS, (len(engine.fast_stylizer.levels), encoder.width_divisor), 0.25)
    assert engine.planned_seconds("fast", 480, 640) == pytest.approx(0.25 * before)


def test_manager_estimates_scale_with_the_result_size():
    manager = JobManager(LibraryEngine(), Settings(workers=1))
    try:
        small, big = manager.estimate("optimize", 120, 160), manager.estimate("optimize", 768, 1024)
        assert 10 < small < 60 and big > 3 * small  # a thumbnail is not a 1024 px painting
        assert manager.estimate("fast", 2160, 3840) > 10 * manager.estimate("fast", 384, 512)
    finally:
        manager.stop()


def test_fast_mode_over_http_with_a_model_file(encoder, model_file):
    """What `serve --fast-model FILE` does: fast is offered and the default, and the synchronous
    endpoint answers the library's own fast result for the uploaded photo."""
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from painterly.image import from_array
    from painterly.web import create_app
    from painterly.web.uploads import builtin_tensor

    rng = np.random.default_rng(0)
    photo = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    engine = LibraryEngine(device="cpu", encoder=encoder, fast_model=model_file)
    with TestClient(create_app(Settings(workers=1), engine)) as c:
        health = c.get("/api/v1/health").json()
        assert health["modes"] == {"fast": True, "optimize": True} and health["default_method"] == "fast"
        r = c.post("/api/v1/stylize", files={"content": ("p.png", buf.getvalue(), "image/png")},
                   data={"style": "waves", "alpha": "0.7"})
        assert r.status_code == 200, r.text
        got = np.asarray(Image.open(io.BytesIO(r.content)), np.float64)
    expected = stylize_fast(from_array(photo), [builtin_tensor("waves")],
                            FastOptions(alpha=0.7, model=str(model_file), device="cpu"), encoder=encoder)
    expected = expected[0].permute(1, 2, 0).numpy() * 255
    assert got.shape == (48, 64, 3) and np.abs(got - expected).max() <= 1.0
    assert np.abs(got - photo).mean() > 5  # the decoder really ran


# --- job manager -----------------------------------------------------------------------------
class Gate:
    def __init__(self):
        self.open = threading.Event()
        self.running = threading.Semaphore(0)

    def modes(self):
        return {"fast": True, "optimize": True}

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
def test_real_optimize_mode_over_http():
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from painterly.web import create_app

    engine = LibraryEngine(device="cpu", best_options=OptimizeOptions(steps=2, min_steps=1))
    photo = np.zeros((64, 64, 3), np.uint8)
    photo[:, :32] = (200, 60, 40)
    photo[:, 32:] = (40, 90, 200)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    app = create_app(Settings(workers=1), engine)
    with TestClient(app) as c:
        r = c.post("/api/v1/jobs", files={"content": ("p.png", buf.getvalue(), "image/png")},
                   data={"style": "waves", "method": "optimize", "size": "64"})
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
    from painterly.image import from_array
    from painterly.web.uploads import builtin_tensor

    expected = stylize_optimize(from_array(photo), [builtin_tensor("waves")],
                                OptimizeOptions(steps=2, min_steps=1, device="cpu"))
    expected = expected[0].permute(1, 2, 0).numpy() * 255
    assert img.shape == (64, 64, 3)
    assert np.abs(img - expected).max() <= 1.0
    assert np.abs(img - photo).max() > 0  # and it is not just the photo
