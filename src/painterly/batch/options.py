"""The options of a batch, declared once: :class:`BatchOptions`. ``painterly batch`` makes one
flag per field (``alpha_max`` -> ``--alpha-max``) from the field's type, default and ``help``
metadata, so a field added here gets its flag without CLI work.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import StyleTransferError

__all__ = ["BatchOptions", "OUTPUT_FORMATS", "available_cores"]

OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _opt(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class BatchOptions:
    """How every image of a batch is stylized and written.

    Attributes:
        size: longest side of each output in pixels; ``None`` keeps each photo's own size.
        format: output type, ``"png"``, ``"jpg"`` or ``"webp"``; ``None`` keeps each photo's own
            type (``a/b.jpg`` -> ``OUT/a/b.jpg``).
        quality: JPEG/WEBP quality (1-100).
        alpha: content/style trade-off in [0, 1]; with ``alpha_max`` the lower end of a range.
        alpha_max: draw each image's alpha uniformly from ``[alpha, alpha_max]`` (seeded, per
            image; rounded to 4 decimals so the manifest holds it exactly); ``None`` = fixed alpha.
        seed: seed of the random pairing (a style per image from several) and of alpha ranges: the
            same seed gives the same pairs on any machine, in any order, with any runner.
        transform: ``"adain"``, ``"wct"``, ``"mixed"`` or ``None`` (the model's own; see ``FastOptions``).
        levels: encoder levels to run (``None`` = every level of the model).
        preserve_color: ``None``, ``"luminance"`` or ``"histogram"``.
        model: a fast-mode model file or built-in name (``"slim"``, ``"large"``); ``None`` = default.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``...
        force: redo outputs that exist (default: a complete output is skipped, so a rerun resumes).
        workers: embedded runner: images in flight at once (threads sharing one model); ``None`` =
            the cores available. Each gets ``cores // workers`` torch threads.
        batch_size: Ray runner: images per call of an actor.
        actors: Ray runner: number of actors (one model each); ``None`` = as many as the cluster's
            CPUs allow (``cpus_per_actor`` each).
        cpus_per_actor: Ray runner: CPUs (and torch threads) of each actor.
        max_input_pixels: photos with more pixels are refused (decompression-bomb guard).

    Examples:
        >>> BatchOptions(alpha=0.5, alpha_max=1.0, seed=3).validate()
        >>> BatchOptions(format="gif").validate()
        Traceback (most recent call last):
        ...
        painterly.errors.StyleTransferError: format must be png, jpg or webp, got 'gif'
    """

    size: int | None = _opt(512, "longest side of each output (default 512); 0 keeps each photo's size",
                            metavar="PX")
    format: str | None = _opt(None, "output type: png, jpg or webp (default: each photo's own type)",
                              choices=tuple(OUTPUT_FORMATS))
    quality: int = _opt(95, "JPEG/WEBP quality 1-100 (default 95)", metavar="Q")
    alpha: float = _opt(1.0, "0 = photo, 1 = full style (default 1); with --alpha-max the low end of a range",
                        metavar="A")
    alpha_max: float | None = _opt(None, "draw each image's alpha uniformly from [--alpha, --alpha-max] (seeded)",
                                   metavar="A")
    seed: int = _opt(0, "seed of the random style per image and of alpha ranges (default 0): "
                        "a rerun gives the same pairs", metavar="N")
    transform: str | None = _opt(None, "adain, wct or mixed (default: the model's own; see painterly stylize --help)",
                                 choices=("adain", "wct", "mixed"))
    levels: list[str] | None = _opt(None, "encoder levels to run, deepest first (default: every level)",
                                    choices=("relu4_1", "relu3_1", "relu2_1", "relu1_1"), metavar="LEVEL")
    preserve_color: str | None = _opt(None, "keep the photos' colours: luminance or histogram",
                                      choices=("luminance", "histogram"))
    model: str | None = _opt(None, "a model file, or a built-in model: slim or large (default: the best installed)",
                             metavar="FILE")
    device: str = _opt("cpu", "cpu (default), cuda, cuda:N, mps or auto")
    force: bool = _opt(False, "redo outputs that exist (default: skip them, so a rerun resumes)")
    workers: int | None = _opt(None, "embedded: images in flight, sharing one model (default: the cores)",
                               metavar="N")
    batch_size: int = _opt(4, "--ray: images per actor call (default 4)", metavar="N")
    actors: int | None = _opt(None, "--ray: actors, one model each (default: the cluster's CPUs / "
                                    "--cpus-per-actor)", metavar="N")
    cpus_per_actor: int = _opt(1, "--ray: CPUs and torch threads per actor (default 1)", metavar="N")
    max_input_pixels: int = _opt(80_000_000, "refuse photos over N pixels (default 80M)", metavar="N")

    def validate(self) -> None:
        """Raise :class:`StyleTransferError` (one line, naming the field) for a bad value."""
        if self.size is not None and self.size < 16:
            raise StyleTransferError(f"size must be at least 16 px, got {self.size}")
        if self.format is not None and self.format not in OUTPUT_FORMATS:
            raise StyleTransferError(f"format must be png, jpg or webp, got {self.format!r}")
        if not 1 <= self.quality <= 100:
            raise StyleTransferError(f"quality must be between 1 and 100, got {self.quality}")
        for name in ("alpha", "alpha_max"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise StyleTransferError(f"{name} must be between 0 and 1, got {value}")
        if self.alpha_max is not None and self.alpha_max < self.alpha:
            raise StyleTransferError(f"alpha_max ({self.alpha_max}) must be >= alpha ({self.alpha})")
        for name in ("workers", "batch_size", "actors", "cpus_per_actor", "max_input_pixels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise StyleTransferError(f"{name} must be at least 1, got {value}")
        if self.transform not in (None, "adain", "wct", "mixed"):
            raise StyleTransferError(f"transform must be adain, wct or mixed, got {self.transform!r}")
        if self.preserve_color not in (None, "luminance", "histogram"):
            raise StyleTransferError(f"preserve_color must be luminance or histogram, got {self.preserve_color!r}")

    def fast_options(self, alpha: float):
        """The ``FastOptions`` of one image (its own alpha)."""
        from ..stylizers.fast import FastOptions

        return FastOptions(alpha=alpha, transform=self.transform, levels=self.levels,
                           preserve_color=self.preserve_color, device=self.device, model=self.model)
