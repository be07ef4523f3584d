"""Style weights: how several styles blend (a weighted sum of their style targets, Gatys et al.
2016 §4; of their AdaIN statistics, Huang & Belongie 2017 §7). One check for every interface."""
from __future__ import annotations

import math
from typing import Sequence

from ..errors import StyleTransferError


def check_style_weights(weights: Sequence[float] | None, n_styles: int | None = None) -> None:
    """Raise :class:`StyleTransferError` unless ``weights`` is ``None`` (equal blend) or one finite
    weight >= 0 per style (``n_styles``; ``None``: any count), not all 0, with a finite sum."""
    if weights is None:
        return
    if n_styles is not None and len(weights) != n_styles:
        raise StyleTransferError(f"style weights: {len(weights)} for {n_styles} styles (give one per style)")
    if any(not (w >= 0 and math.isfinite(w)) for w in weights) or not 0 < sum(weights) < math.inf:
        raise StyleTransferError("style weights must be >= 0 and not all zero")


def blend_weights(weights: Sequence[float] | None, n_styles: int) -> list[float]:
    """``weights`` normalised to sum 1 (``w_k / sum_j w_j``); equal weights when ``None``."""
    blend = [float(w) for w in weights] if weights is not None else [1.0] * n_styles
    total = sum(blend)
    return [w / total for w in blend]
