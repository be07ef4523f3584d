"""Optical flow and the temporal blend: the maths that keeps consecutive frames coherent.

    w   = flow(I_t -> I_{t-1})                       DIS optical flow (Kroeger et al., 2016)
    M   = forward-backward consistent(w) and not a motion boundary and inside the frame
    O_t = S_t + beta * M~ * (warp(O_{t-1}, w) - S_t)   then its detail contrast restored (:mod:`.detail`)

with ``M~ = min(M, G_2 * M)`` (:func:`feather`: no seam at the mask's edges).

The occlusion test is the forward-backward check of Sundaram et al. (2010) as used for video
style transfer by Ruder et al. (2016); :func:`warping_error` is Lai et al.'s (2018) measure.
Frames are (H, W, 3) numpy arrays here (uint8 or float32 in [0, 1]).
"""
from __future__ import annotations

import numpy as np

from .detail import restore_detail
from .media import import_media
from .options import DEFAULT_BLEND

def _gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB (uint8 or float in [0, 1]) -> (H, W) uint8 luma for the flow."""
    _, cv2 = import_media()
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def warp(image: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))`` (outside the frame: border copy).

    ``image`` (H, W, C) or (H, W) float32, ``flow`` (H, W, 2) in pixels (x, y). Bilinear, or
    bicubic with ``cubic`` (a recursive warp blurs less: bilinear at half-pixel shifts halves the
    finest detail every frame).
    """
    _, cv2 = import_media()
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistent_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose flow to t-1 can be trusted: (H, W) float32 in {0, 1}.

    ``backward`` maps t -> t-1, ``forward`` t-1 -> t. A pixel is kept when (Sundaram et al.
    2010; Ruder et al. 2016) it lands inside frame t-1, the round trip returns near it,

        |w + w^(x + w)|^2 <= 0.01 (|w|^2 + |w^(x + w)|^2) + 0.5,

    and it is not on a motion boundary, |grad u|^2 + |grad v|^2 <= 0.01 |w|^2 + 0.002.
    """
    h, w = backward.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = gx + backward[..., 0], gy + backward[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    fwd_at = warp(forward, backward)
    round_trip = ((backward + fwd_at) ** 2).sum(-1)
    ok = round_trip <= 0.01 * ((backward ** 2).sum(-1) + (fwd_at ** 2).sum(-1)) + 0.5
    du = np.gradient(backward[..., 0])
    dv = np.gradient(backward[..., 1])
    grad2 = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2
    smooth = grad2 <= 0.01 * (backward ** 2).sum(-1) + 0.002
    return (inside & ok & smooth).astype(np.float32)


FEATHER_SIGMA = 2.0  # px: how far the blend weight ramps up inside the valid region (bench_video.py)


def feather(valid: np.ndarray, sigma: float = FEATHER_SIGMA) -> np.ndarray:
    """``min(M, G_sigma * M)``: the valid mask with its edges ramped inward, (H, W) float32.

    DIS flow is estimated on patches, so the forward-backward check cuts blocky holes; a hard
    mask there leaves a seam between a pixel's own stylization and the blended one beside it.
    Ramping the weight up over a few pixels *inside* the valid region hides the seam and never
    blends a pixel the check rejected (the minimum keeps ``M = 0`` at 0).

    Examples:
        >>> m = np.zeros((1, 20), np.float32); m[:, 10:] = 1
        >>> f = feather(m)
        >>> bool((f[:, :10] == 0).all()), 0.4 < float(f[0, 10]) < 0.8, float(f[0, 19]) > 0.99
        (True, True, True)
    """
    _, cv2 = import_media()
    return np.minimum(valid, cv2.GaussianBlur(valid, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE))


class FlowEstimator:
    """DIS optical flow (OpenCV) between two RGB frames, with the occlusion mask."""

    def __init__(self, preset: str = "medium") -> None:
        _, cv2 = import_media()
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def __call__(self, current: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flow current -> previous (``current(x) ~ previous(x + flow(x))``) and its valid mask."""
        g1, g0 = _gray(current), _gray(previous)
        backward = self._dis.calc(g1, g0, None)
        forward = self._dis.calc(g0, g1, None)
        return backward, consistent_mask(backward, forward)


class TemporalBlender:
    """``O_t = S_t + beta * M~ * (warp(O_{t-1}) - S_t)``, frame after frame (see the module doc).

    With ``detail`` (the default) the blend's fine texture gets back the contrast of the frame's
    own stylization (:func:`~painterly.video.detail.restore_detail`): averaging two paintings
    whose strokes do not line up fades them. Holds only the previous input and output frames
    (and, between :meth:`warm_start` and the call on the same frame, that frame's flow).
    ``reset()`` starts over (e.g. at a cut).
    """

    def __init__(self, blend: float = DEFAULT_BLEND, flow: FlowEstimator | None = None, cubic: bool = True,
                 detail: bool = True) -> None:
        self.blend, self.cubic, self.detail = blend, cubic, detail
        self.flow = flow or FlowEstimator()
        self.reset()

    def reset(self) -> None:
        self._prev_in: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self._motion: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (frame, flow, valid)

    def _flow(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Flow ``frame`` -> previous input and its valid mask; ``None`` with no previous frame."""
        if self._prev_in is None or self._prev_in.shape != frame.shape:
            return None
        if self._motion is None or self._motion[0] is not frame:  # once per frame
            self._motion = (frame, *self.flow(frame, self._prev_in))
        return self._motion[1], self._motion[2]

    def warm_start(self, frame: np.ndarray) -> np.ndarray | None:
        """Start image of an optimisation (Ruder et al. 2016): ``M warp(O_{t-1}) + (1 - M) I_t``.

        ``frame`` (H, W, 3) input RGB. Returns (H, W, 3) float32 in [0, 1], or ``None`` for the
        first frame (after ``reset()`` or a size change). Call it before ``blender(frame, ...)``:
        the flow is computed once for both.
        """
        motion = self._flow(frame)
        if motion is None:
            return None
        backward, valid = motion
        warped = warp(self._prev_out, backward, self.cubic)
        photo = frame.astype(np.float32) / 255 if frame.dtype == np.uint8 else frame.astype(np.float32)
        return np.clip(photo + valid[..., None] * (warped - photo), 0, 1)

    def __call__(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """``frame`` (H, W, 3) input RGB, ``stylized`` (H, W, 3) float32 in [0, 1] -> output float32."""
        out = stylized
        motion = self._flow(frame) if self.blend > 0 else None
        if motion is not None:
            backward, valid = motion
            warped = warp(self._prev_out, backward, self.cubic)
            weight = self.blend * feather(valid)
            out = stylized + weight[..., None] * (warped - stylized)
            if self.detail:
                out = restore_detail(out, stylized, weight)
        self._prev_in, self._prev_out = frame, out
        self._motion = None  # holds the frame: let it go with the next one
        return out


def warping_error(output: np.ndarray, previous: np.ndarray, flow: np.ndarray, valid: np.ndarray) -> float:
    """One term of Lai et al.'s (2018) warping error.

    ``mean over valid i of ||O_t(i) - warp(O_{t-1}, flow)(i)||^2`` with images (H, W, 3) in
    [0, 1], ``flow`` t -> t-1 and ``valid`` (H, W) the non-occluded pixels.
    """
    diff = ((output.astype(np.float32) - warp(previous.astype(np.float32), flow)) ** 2).sum(-1)
    return float((diff * valid).sum() / max(float(valid.sum()), 1.0))
