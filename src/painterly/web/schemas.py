"""The API's data shapes: the options of a stylization, a job's status, a style, and the
multipart form as OpenAPI describes it."""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import StyleTransferError
from ..stylizers.weights import check_style_weights

MIN_SIDE = 64  # results are at least this long (tiny photos are enlarged)
FORM_FIELDS = {"content", "style"}
# The web's first words for the library's options: still accepted, deprecated (the library's
# words are what the API documents and answers with).
DEPRECATED_FIELDS = {"quality": "method", "strength": "alpha", "keep_colors": "preserve_color"}
VIDEO_ONLY = ("temporal", "audio", "start", "duration")  # options of a video job (ignored for a photo)


class JobOptions(BaseModel):
    """Options of a stylization (multipart form fields besides ``content`` and ``style``)."""

    # inf/nan (and 1e400, which parses as inf) are refused here, as a 422, before any work
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: Literal["fast", "optimize"] | None = Field(
        None, validation_alias=AliasChoices("method", "quality"),
        description="fast = feed-forward model (seconds, up to 4K); optimize = the Gatys optimisation "
                    "(minutes, the best quality). Default: fast when the server has the model, else optimize.")
    alpha: float = Field(1.0, ge=0.0, le=1.0, validation_alias=AliasChoices("alpha", "strength"),
                         description="style strength: 0 = the photo unchanged, 1 = full style")
    preserve_color: Literal["off", "luminance", "histogram"] = Field(
        "off", validation_alias=AliasChoices("preserve_color", "keep_colors"),
        description="keep the photo's colours: luminance (exact colours) or histogram; true = luminance")
    size: int | None = Field(None, ge=MIN_SIDE, description="longest side of the result in pixels "
                                                            "(never more than the photo's or video's own)")
    format: Literal["png", "jpeg"] = Field("png", description="format of the result (a photo; a video's is MP4)")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed (method=optimize)")
    style_weights: list[float] | None = Field(
        None, description="comma-separated blend weights, one per style (e.g. 0.7,0.3)")
    temporal: bool = Field(True, description="video: keep consecutive frames coherent (optical flow); "
                                             "false = every frame stylized on its own")
    audio: bool = Field(True, description="video: keep the sound track")
    start: float | None = Field(None, ge=0, description="video: seconds to skip at the beginning")
    duration: float | None = Field(None, gt=0, description="video: seconds to keep after start "
                                                           "(default: to the end)")

    @model_validator(mode="before")
    @classmethod
    def _old_quality_words(cls, data: Any) -> Any:
        """The deprecated ``quality`` said ``best`` for what the library calls ``optimize``."""
        if isinstance(data, dict) and isinstance(data.get("quality"), str) and data["quality"].strip() == "best":
            return {**data, "quality": "optimize"}
        return data

    @field_validator("preserve_color", mode="before")
    @classmethod
    def _bool_colors(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return "luminance" if v else "off"
        if isinstance(v, str):
            low = v.strip().lower()
            if low in ("true", "on", "yes", "1"):
                return "luminance"
            if low in ("false", "off", "no", "0", "", "none"):
                return "off"
            return low
        return v

    @field_validator("format", mode="before")
    @classmethod
    def _jpg(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        return "jpeg" if v.lower() in ("jpg", "jpeg") else v.lower()

    @field_validator("style_weights", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p for p in (s.strip() for s in v.split(",")) if p]
        return v

    @field_validator("style_weights")
    @classmethod
    def _weights(cls, v: list[float] | None) -> list[float] | None:
        try:
            check_style_weights(v)
        except StyleTransferError as exc:
            raise ValueError(str(exc)) from None
        return v


class JobStatus(BaseModel):
    """A job as the API reports it."""

    id: str
    kind: Literal["image", "video"] = Field("image", description="what was sent: a photo or a video clip")
    media_type: str | None = Field(None, description="the result's type when it is not an image (video/mp4)")
    frames: int | None = Field(None, description="video: frames in the clip (as stylized)")
    frames_done: int | None = Field(None, description="video: frames stylized so far")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(description="0..1")
    percent: int
    eta_seconds: float | None = Field(description="estimated seconds until the result is ready")
    elapsed_seconds: float | None
    queue_position: int | None
    method: Literal["fast", "optimize"]
    quality: Literal["fast", "best"] = Field(description="deprecated: the old name of method (best = optimize)",
                                             json_schema_extra={"deprecated": True})
    width: int
    height: int
    options: dict
    error: str | None
    created_at: float
    finished_at: float | None
    expires_at: float | None = Field(description="when the result will be deleted (unix time)")
    result_url: str | None = None
    status_url: str


class StyleInfo(BaseModel):
    name: str
    title: str
    description: str
    thumbnail_url: str
    image_url: str


class Estimate(BaseModel):
    """What a photo of a given size becomes with one method, and how long it takes here."""

    width: int = Field(description="width of the result")
    height: int = Field(description="height of the result")
    seconds: float = Field(description="estimated run time on this server (the plan's figures, corrected by its measured runs)")


def form_schema(sync: bool) -> dict:
    """OpenAPI ``requestBody`` of the multipart form of ``POST /jobs`` (``sync``: ``/stylize``)."""
    props: dict[str, Any] = {
        "content": {"type": "string", "format": "binary",
                    "description": "the photo (PNG, JPEG, WebP...)" + ("" if sync else
                                   ", or a short video clip (MP4, MOV, WebM, MKV...; result: MP4)")},
        "style": {"type": "array", "items": {"type": "string"},
                  "description": "one or more styles: an uploaded image file, or a built-in style name "
                                 "(see GET /api/v1/styles); repeat the field to blend several"},
    }
    for name, prop in JobOptions.model_json_schema(by_alias=False)["properties"].items():
        if sync and (name == "method" or name in VIDEO_ONLY):
            continue
        prop = dict(prop)
        if name == "style_weights":
            prop = {"type": "string", "description": prop.get("description", "")}
        props[name] = prop
    for old, new in DEPRECATED_FIELDS.items():
        if new in props:
            values = " (best = optimize)" if old == "quality" else ""
            props[old] = {**props[new], "title": old.replace("_", " ").capitalize(), "deprecated": True,
                          "description": f"deprecated: the old name of {new}{values}; still accepted"}
            if old == "quality":
                props[old]["anyOf"] = [{"enum": ["fast", "best"], "type": "string"}, {"type": "null"}]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["content", "style"], "properties": props}}}}}


def friendly(error: dict) -> dict:
    """A pydantic error -> FastAPI's 422 shape, with a plain message for unknown options."""
    out = {k: json_safe(v) for k, v in error.items() if k in ("type", "msg", "input")}
    out["loc"] = ("body", *error["loc"])
    if error.get("type") == "extra_forbidden" and error["loc"][0] in DEPRECATED_FIELDS:
        old = error["loc"][0]
        out["msg"] = f"{old} is the old name of {DEPRECATED_FIELDS[old]}: send one of them, not both"
    elif error.get("type") == "extra_forbidden":
        known = ", ".join(sorted([*FORM_FIELDS, *JobOptions.model_fields]))
        out["msg"] = f"unknown option {error['loc'][0]!r}; known fields: {known}"
    return out


def json_safe(value: Any) -> Any:
    """``value`` as JSON can carry it: a non-finite float (which JSON has no words for, and
    which would turn a 422 into a 500) becomes its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
