"""The page's on-device mode: the server only hands out static files, the browser stylizes.

    GET /ondevice/status                  {"available": bool, "reason": str, "model": {...}, "ort": {...}}
    GET /ondevice/model/{key}/{file}      style_encoder.onnx, stylizer.onnx, model.json (immutable)
    GET /ondevice/ort/{file}              onnxruntime-web's dist/ (installed by `npm ci`)

The model is, in order: the folder named by ``$PAINTERLY_ONDEVICE_MODEL`` (written by
``painterly export``), else the server's fast model (``--fast-model`` or the built-in one)
exported once with fp16 weights into the cache (``$PAINTERLY_CACHE``). onnxruntime-web
comes from ``$PAINTERLY_ORT_DIR``, else ``node_modules/onnxruntime-web/dist`` of the
repository (or of the current folder). When either is missing, ``/ondevice/status`` says why and
the page shows it.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import export

log = logging.getLogger("painterly.web")

MODEL_ENV = "PAINTERLY_ONDEVICE_MODEL"
ORT_ENV = "PAINTERLY_ORT_DIR"
ORT_FILES = ("ort.wasm.min.mjs", "ort.webgpu.min.mjs")
SERVED = (*export.FILES, export.MANIFEST)


def find_ort_dir() -> Path | None:
    """onnxruntime-web's ``dist`` folder, or None when it is not installed."""
    candidates = [os.environ.get(ORT_ENV)]
    for base in (Path(__file__).resolve().parents[3], Path.cwd()):  # the repository (editable install), cwd
        candidates.append(str(base / "node_modules" / "onnxruntime-web" / "dist"))
    for c in candidates:
        if c and all((Path(c) / f).is_file() for f in ORT_FILES):
            return Path(c)
    return None


class OnDeviceModel:
    """Finds (or exports once) the ONNX folder the browser downloads."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.folder: Path | None = None
        self.manifest: dict[str, Any] = {}  # the folder's model.json, read once
        self.error: str | None = None

    @property
    def key(self) -> str:
        """The model's version in its URLs: the start of the stylizer's SHA-256."""
        return self.manifest["files"]["stylizer.onnx"]["sha256"][:16]

    def _source(self) -> tuple[Path | None, str | None]:
        """(folder ready to serve, model file to export); both None when there is no model."""
        given = os.environ.get(MODEL_ENV)
        if given:
            return Path(given), None
        model = getattr(self.engine, "fast_model", None)
        if model:
            return None, model
        from ..stylizers import fast

        if fast.default_model_available():
            return None, str(fast.builtin_model_path())
        return None, None

    def resolve(self) -> Path:
        """The folder to serve; raises RuntimeError with a user-facing reason."""
        with self.lock:
            if self.folder is not None:
                return self.folder
            if self.error is not None:
                raise RuntimeError(self.error)
            try:
                folder, model = self._source()
                if folder is None and model is None:
                    raise RuntimeError("this server has no fast model to send to your device")
                if folder is None:
                    folder = export.cache_dir() / f"app-v{export.FORMAT_VERSION}-{export._sha256(Path(model))[:16]}-fp16"
                    if not _intact(folder):  # never exported, or cut (a full disk, a killed copy)
                        shutil.rmtree(folder, ignore_errors=True)
                        folder.parent.mkdir(parents=True, exist_ok=True)
                        log.info("exporting %s to ONNX for the on-device mode", model)
                        export.export_onnx(folder, model, fp16=True, overwrite=True)
                if not all((folder / f).is_file() for f in SERVED):
                    raise RuntimeError(f"{folder} is not a `painterly export` folder")
                manifest = json.loads((folder / export.MANIFEST).read_text())
            except RuntimeError as exc:
                self.error = str(exc)
                raise
            except Exception as exc:  # noqa: BLE001 - the page gets a reason, the log the details
                log.exception("on-device model unavailable")
                self.error = f"the server could not prepare the on-device model ({exc.__class__.__name__}: {exc})"
                raise RuntimeError(self.error) from None
            self.manifest, self.folder = manifest, folder
            return folder


def _intact(folder: Path) -> bool:
    """Whether a cached export has its model.json and every file at the size it states."""
    try:
        files = json.loads((folder / export.MANIFEST).read_text())["files"]
        return all((folder / name).stat().st_size == entry["bytes"] for name, entry in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def mount_ondevice(app: FastAPI, engine: Any) -> None:
    """Add the on-device routes to the app."""
    model = OnDeviceModel(engine)
    ort_dir = find_ort_dir()
    if ort_dir is not None:
        app.mount("/ondevice/ort", StaticFiles(directory=ort_dir), name="ondevice-ort")

    @app.get("/ondevice/status", include_in_schema=False)
    async def status():
        body: dict[str, Any] = {"available": False, "reason": ""}
        if ort_dir is None:
            body["reason"] = "onnxruntime-web is not installed on this server (run `npm ci` in the repository)"
            return JSONResponse(body, headers={"Cache-Control": "no-cache"})
        try:
            await run_in_threadpool(model.resolve)
        except RuntimeError as exc:
            body["reason"] = str(exc)
            return JSONResponse(body, headers={"Cache-Control": "no-cache"})
        manifest = model.manifest
        base = f"/ondevice/model/{model.key}/"
        body.update(available=True, model={
            "style_encoder": base + "style_encoder.onnx", "stylizer": base + "stylizer.onnx",
            "bytes": sum(f["bytes"] for f in manifest["files"].values()),
            "statistics_size": manifest["statistics_size"], "style_size": manifest["style_size"]},
            ort={"base": "/ondevice/ort/", "wasm": ORT_FILES[0], "webgpu": ORT_FILES[1]})
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    @app.get("/ondevice/model/{key}/{name}", include_in_schema=False)
    async def model_file(key: str, name: str):
        if name not in SERVED:
            raise HTTPException(404, "no such file")
        try:
            folder = await run_in_threadpool(model.resolve)
        except RuntimeError as exc:
            raise HTTPException(404, str(exc)) from None
        if model.key != key:
            raise HTTPException(404, "this model version is gone; reload the page")
        return FileResponse(folder / name, media_type="application/octet-stream",
                            headers={"Cache-Control": "public, max-age=31536000, immutable"})
