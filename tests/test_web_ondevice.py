"""The server side of the on-device mode: /ondevice/status, the model files, onnxruntime-web."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnx")
from fastapi.testclient import TestClient  # noqa: E402

from painterly import checkpoint as ckpt  # noqa: E402
from painterly import export  # noqa: E402
from painterly.models import Decoder  # noqa: E402
from painterly.stylizers import fast  # noqa: E402
from painterly.web import Settings, create_app, ondevice  # noqa: E402
from painterly.web.engine import LibraryEngine  # noqa: E402


class Stub:
    def modes(self):
        return {"fast": False, "optimize": False}

    def run(self, task, progress):  # pragma: no cover
        raise AssertionError


@pytest.fixture
def fake_ort(tmp_path, monkeypatch):
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ondevice.ORT_FILES:
        (dist / name).write_text("export const env = {};\n")
    (dist / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    monkeypatch.setenv(ondevice.ORT_ENV, str(dist))
    return dist


def _client(engine):
    return TestClient(create_app(Settings(workers=1), engine))


def test_status_explains_what_is_missing(tmp_path, monkeypatch, fake_ort):
    monkeypatch.delenv(ondevice.MODEL_ENV, raising=False)
    monkeypatch.setattr(fast, "default_model_available", lambda: False)
    body = _client(Stub()).get("/ondevice/status").json()
    assert body["available"] is False and "no fast model" in body["reason"]
    monkeypatch.setattr(ondevice, "find_ort_dir", lambda: None)
    body = _client(Stub()).get("/ondevice/status").json()
    assert body["available"] is False and "onnxruntime-web is not installed" in body["reason"]


def test_serves_the_exported_model_and_onnxruntime_web(tmp_path, monkeypatch, fake_ort, tiny_encoder):
    folder = export.export_onnx(tmp_path / "m", encoder=tiny_encoder, decoder=Decoder(32, 0.125)).folder
    monkeypatch.setenv(ondevice.MODEL_ENV, str(folder))
    client = _client(Stub())
    body = client.get("/ondevice/status").json()
    assert body["available"] is True, body
    r = client.get(body["model"]["stylizer"])
    assert r.status_code == 200 and r.content == (folder / "stylizer.onnx").read_bytes()
    assert "immutable" in r.headers["cache-control"]
    assert body["model"]["bytes"] == sum(f["bytes"] for f in json.loads((folder / "model.json").read_text())["files"].values())
    assert client.get("/ondevice/model/0123456789abcdef/stylizer.onnx").status_code == 404  # an old version
    assert client.get(body["model"]["stylizer"].replace("stylizer.onnx", "MODEL_CARD.md")).status_code == 404
    r = client.get("/ondevice/ort/" + body["ort"]["wasm"])
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert client.get("/ondevice/ort/ort-wasm-simd-threaded.wasm").headers["content-type"] == "application/wasm"
    assert "'wasm-unsafe-eval'" in client.get("/").headers["content-security-policy"]


def test_exports_the_servers_fast_model_once(tmp_path, monkeypatch, fake_ort, tiny_encoder):
    from painterly.encoders.student import student_meta, student_tensors

    monkeypatch.delenv(ondevice.MODEL_ENV, raising=False)
    monkeypatch.setenv(export.CACHE_ENV, str(tmp_path / "cache"))
    dec = Decoder(32, 0.125)
    tensors = {f"decoder.{k}": v for k, v in dec.state_dict().items()}
    tensors.update(student_tensors(tiny_encoder))  # the file carries its (tiny) encoder, as the slim model does
    model = ckpt.atomic_save(tensors, tmp_path / "model.safetensors",
                             {"decoder": dec.config, "encoder": student_meta(tiny_encoder)})
    monkeypatch.setattr(fast, "builtin_model_path", lambda: pytest.fail("the built-in model was sent"))
    client = _client(LibraryEngine(device="cpu", fast_model=model))  # as `serve --fast-model`
    body = client.get("/ondevice/status").json()
    assert body["available"] is True, body
    exported = list((tmp_path / "cache" / "onnx").glob("app-*-fp16"))
    assert len(exported) == 1
    manifest = json.loads((exported[0] / "model.json").read_text())
    assert manifest["fp16_weights"] is True
    assert manifest["source"] == {"model": "model.safetensors", "sha256": export._sha256(model)}
    assert client.get(body["model"]["style_encoder"]).status_code == 200
    # a cut file in the cache (a full disk, a killed copy) is exported again, not sent to browsers
    stylizer = exported[0] / "stylizer.onnx"
    stylizer.write_bytes(stylizer.read_bytes()[:1000])
    client = _client(LibraryEngine(device="cpu", fast_model=model))
    body = client.get("/ondevice/status").json()
    assert body["available"] is True, body
    assert stylizer.stat().st_size == manifest["files"]["stylizer.onnx"]["bytes"]
    assert len(client.get(body["model"]["stylizer"]).content) == stylizer.stat().st_size
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"junk")
    body = _client(LibraryEngine(device="cpu", encoder=tiny_encoder, fast_model=broken)).get("/ondevice/status").json()
    assert body["available"] is False and "could not prepare" in body["reason"]
