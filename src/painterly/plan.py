"""What a run will cost before it starts: peak memory, rough time, and the work plan.

Everything here is arithmetic on sizes and options (no tensors, no I/O except
:func:`available_memory`), from figures measured on this project's machine (AMD EPYC, AVX2, 2
cores; ``benchmarks/bench_memory.py`` checks them against measured peak RSS):

- **optimize** (Gatys): a step is one forward + backward pass of VGG19 to ``relu5_1`` on the
  whole image, so memory grows with the pixels of the finest scale, ``P``::

      peak = BASE + OPT_BYTES_PER_PIXEL * P + pairs * 24 * P

  (autograd keeps every activation for the backward pass; each L-BFGS curvature pair holds
  two float32 copies of the image, 24 bytes a pixel; ``pairs`` = min(history, steps - 1)).
  Time: ``OPT_SECONDS_PER_MPX_STEP`` seconds per megapixel-step on 2 cores.
- **fast** (AdaIN): no gradients, and both networks run tile by tile, so the networks' memory
  is set by the tile (plus its halo), and only a few whole-image buffers grow with ``P``::

      peak = BASE + FAST_IMAGE_BYTES_PER_PIXEL * P + FAST_TILE_BYTES_PER_PIXEL * window

  where ``window`` is the largest tile with its halo (the whole image when it fits one tile).

Examples:
    >>> from painterly.stylizers.optimize import OptimizeOptions
    >>> p = plan_optimize(512, 512, OptimizeOptions())
    >>> p.scales, p.steps
    (((256, 256), (512, 512)), (68, 17))
    >>> 0.5e9 < p.peak_bytes < 3e9
    True
    >>> format_bytes(38.2e9), format_seconds(107)
    ('38 GB', '1 min 47 s')
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import StyleTransferError
from .image import fit_size

# --- measured figures (benchmarks/bench_memory.py; AMD EPYC AVX2, 2 cores, 2026-11-25) -------------
# optimize, one L-BFGS scale of 4 steps, OMP_NUM_THREADS=1, peak RSS: 64^2 0.47 GB, 256^2 0.66,
# 512^2 1.13, 1024^2 3.15 (2.55 GB per megapixel above the base).
BASE_BYTES = 470_000_000  # Python + torch + VGG19 weights, before any image
OPT_BYTES_PER_PIXEL = 2_550  # VGG19 to relu5_1, forward + backward, plus a few image copies
OPT_SECONDS_PER_MPX_STEP = 13.0  # on 2 cores: 0.87 s/step at 256^2, 3.3 at 512^2, 13.7 at 1024^2
LBFGS_PAIR_BYTES_PER_PIXEL = 2 * 3 * 4  # s and y, float32 RGB
ADAM_BYTES_PER_PIXEL = 2 * 3 * 4  # its two moment buffers
NOGRAD_BYTES_PER_PIXEL = 700  # VGG19 without gradients (style targets), around its widest layers
# fast, the built-in four-level model (relu4_1..relu1_1 decoders, AdaIN), peak RSS (VmHWM of a
# fresh process, 2026-11-25): 512^2 0.88 GB, 1024^2 (one tile) 1.66, 2048^2 in tiles of 1056 2.92,
# 3840x2160 5.16 (292 s); time, 2 threads, load included: 9.2 s, 27.6 s, 132 s; one thread, warm:
# 10.5 s at 512^2, 45.7 s at 1024^2. (The single-level relu4_1 model measured 0.63 / 1.09 / 1.68 GB.)
# The constants fit 512^2, 1024^2 and 4K; 2048^2 comes out 15 % high (3.36 GB).
FAST_LOAD_BYTES = 600_000_000  # peak while the VGG19 and decoder weights are read
FAST_BASE_BYTES = 620_000_000  # Python + torch + VGG19 + decoder weights
FAST_TILE_BYTES_PER_PIXEL = 655  # encoders / decoders of every level without gradients, per pixel of a tile window
FAST_IMAGE_BYTES_PER_PIXEL = 440  # whole-image buffers: photo, features, AdaIN targets, each level's output
FAST_SECONDS_PER_MPX = 36.0  # one thread, per megapixel of network input (a tile's halo included), four levels
FAST_TILED_SLOWDOWN = 1.5  # tiled runs: 2048^2 in 4 tiles took 132 s on 2 threads vs 28 s for 1024^2
FAST_LOAD_SECONDS = 3.5  # reading VGG19 and the decoder
FAST_TILES = (1024, 768, 512, 384, 256, 128)  # tiles tried, largest first (128 = FastOptions' minimum)
FAST_DEFAULT_TILE = 1024  # what stylize_fast uses when FastOptions.tile is None
FAST_ENCODER_HALO = 64  # px each side (stylizers/fast.py ENCODER_HALO)
FAST_DECODER_HALO = 64  # px each side (8 feature px)
FAST_STYLE_PIXELS = 512 * 512  # styles are encoded at <= 512 px
REFERENCE_THREADS = 2  # of OPT_SECONDS_PER_MPX_STEP
# A fast model's network time relative to the one the FAST_* figures were measured with (four
# full-width decoders on the full VGG19), by (levels, encoder width divisor). Only measured models
# belong here; one that is not is priced as the large one (an upper bound).
FAST_MODEL_TIME_FACTORS: dict[tuple[int, int], float] = {
    (4, 1): 1.0,
    # the slim model (1/4-width student): 0.15 s vs 1.74 s at 512^2, 0.99 s vs 7.77 s at 1024^2,
    # warm, side by side in benchmarks/bench_peers.py (2026-12-01, 2-core AMD EPYC, AVX512-BF16);
    # with its own transform (mixed, since it was tuned): 1.81 s vs 12.6 s at 1024^2 (bench_fast.py)
    (4, 4): 0.14,
}


@dataclass(frozen=True)
class Plan:
    """The estimate and the work plan of one run.

    Attributes:
        method: ``"optimize"`` or ``"fast"``.
        size: output (height, width).
        scales: (height, width) of every scale, coarse to fine (fast: just the output).
        steps: steps of every scale (fast: empty).
        tile: fast mode's tile side in px, ``None`` when the whole image is one tile.
        tiles: number of tiles (1 = the whole image at once).
        peak_bytes: estimated peak resident memory of the process.
        seconds: estimated wall time of the stylization (an upper bound for optimize: a scale
            that stops early takes less).
    """

    method: str
    size: tuple[int, int]
    scales: tuple[tuple[int, int], ...]
    steps: tuple[int, ...]
    tile: int | None
    tiles: int
    peak_bytes: int
    seconds: float

    @property
    def seconds_per_step(self) -> tuple[float, ...]:
        """Optimize: estimated seconds per step at every scale."""
        work = [h * w for h, w in self.scales]
        total = sum(s * p for s, p in zip(self.steps, work)) or 1
        return tuple(self.seconds * p / total for p in work)

    def describe(self) -> str:
        """Several lines for ``--dry-run``."""
        h, w = self.size
        lines = [f"output {w}x{h}, method {self.method}"]
        if self.method == "optimize":
            lines.append("scales " + ", ".join(f"{sw}x{sh}: {n} steps" for (sh, sw), n in
                                                zip(self.scales, self.steps)))
        else:
            lines.append("whole image in one pass" if self.tiles == 1 else
                         f"{self.tiles} tiles of {self.tile} px (plus a {FAST_ENCODER_HALO} px halo)")
        lines.append(f"estimate: peak memory about {format_bytes(self.peak_bytes)}, "
                     f"time about {format_seconds(self.seconds)}")
        return "\n".join(lines)


def format_bytes(n: float) -> str:
    """``1.2 GB`` (two significant digits, decimal units)."""
    for unit, f in (("GB", 1e9), ("MB", 1e6)):
        if n >= f or unit == "MB":
            v = n / f
            return f"{v:.1f} {unit}" if v < 10 else f"{v:.0f} {unit}"
    raise AssertionError("unreachable")


def format_seconds(s: float) -> str:
    """``45 s``, ``1 min 47 s``, ``2 h 5 min``."""
    s = max(0, round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _thread_factor(threads: int) -> float:
    return REFERENCE_THREADS / max(1, threads)


def optimize_scale_bytes(height: int, width: int, steps: int, optimizer: str = "lbfgs",
                         style_scale: float = 1.0) -> int:
    """Peak memory of one scale of the optimisation (the process's base included)."""
    from .stylizers.optimize import LBFGS_HISTORY_BYTES

    pixels = height * width
    if optimizer == "lbfgs":
        history = max(10, min(100, int(LBFGS_HISTORY_BYTES / (2 * 4 * 3 * pixels))))
        extra = min(history, max(0, steps - 1)) * LBFGS_PAIR_BYTES_PER_PIXEL * pixels
    else:
        extra = ADAM_BYTES_PER_PIXEL * pixels
    grad_pass = OPT_BYTES_PER_PIXEL * pixels + extra
    style_pass = NOGRAD_BYTES_PER_PIXEL * pixels * style_scale ** 2  # style targets, before the steps
    return int(BASE_BYTES + max(grad_pass, style_pass))


def plan_optimize(height: int, width: int, options: Any, threads: int = REFERENCE_THREADS) -> Plan:
    """The plan of ``stylize_optimize`` for an output of ``height`` x ``width``.

    ``options`` is an :class:`~painterly.stylizers.optimize.OptimizeOptions`.
    """
    from .stylizers.optimize_options import scale_sizes, step_schedule

    sizes = scale_sizes(height, width, options)
    steps = step_schedule(len(sizes), options, [h * w for h, w in sizes])
    peak = max(optimize_scale_bytes(h, w, n, options.optimizer, options.style_scale)
               for (h, w), n in zip(sizes, steps))
    work = sum(n * h * w for (h, w), n in zip(sizes, steps)) / 1e6
    seconds = work * OPT_SECONDS_PER_MPX_STEP * _thread_factor(threads)
    return Plan("optimize", (height, width), tuple(sizes), tuple(steps), None, 1, peak, seconds)


def _tile_windows(length: int, tile: int, halo: int) -> tuple[int, int]:
    """(number of tiles, longest window) along one side, as ``stylizers.fast._tiles`` cuts it."""
    if length <= tile:
        return 1, length
    n = math.ceil(length / tile)
    return n, min(length, tile + 2 * halo + 16)  # + rounding of the window to multiples of 8


def _fast_cost(height: int, width: int, tile: int) -> tuple[int, int, int]:
    """(peak memory, number of tiles, pixels the networks see: every window, halos included)."""
    ph, pw = -(-height // 8) * 8, -(-width // 8) * 8  # padded to multiples of 8
    tile = tile // 8 * 8
    if ph * pw <= tile * tile:  # one pass over the whole image
        n, window = 1, ph * pw
        work = window
    else:
        ny, wy = _tile_windows(ph, tile, max(FAST_ENCODER_HALO, FAST_DECODER_HALO))
        nx, wx = _tile_windows(pw, tile, max(FAST_ENCODER_HALO, FAST_DECODER_HALO))
        n, window = ny * nx, wy * wx
        work = sum(_window_lengths(ph, tile)) * sum(_window_lengths(pw, tile))
    nets = FAST_TILE_BYTES_PER_PIXEL * max(window, FAST_STYLE_PIXELS)
    peak = max(FAST_LOAD_BYTES, FAST_BASE_BYTES + FAST_IMAGE_BYTES_PER_PIXEL * ph * pw + nets)
    return int(peak), n, work


def _window_lengths(length: int, tile: int) -> list[int]:
    """Lengths of the windows (tile + halo) along one side."""
    if length <= tile:
        return [length]
    halo = max(FAST_ENCODER_HALO, FAST_DECODER_HALO)
    return [min(length, pos + tile + halo) - max(0, pos - halo) for pos in range(0, length, tile)]


def fast_model_factor(levels: int = 4, width_divisor: int = 1) -> float:
    """A fast model's time relative to the measured one (:data:`FAST_MODEL_TIME_FACTORS`; 1.0,
    the large model's figures, for a model not measured yet).

    >>> fast_model_factor(4, 1)
    1.0
    """
    return FAST_MODEL_TIME_FACTORS.get((int(levels), int(width_divisor)), 1.0)


def plan_fast(height: int, width: int, options: Any, threads: int = REFERENCE_THREADS,
              available: int | None = None, model_factor: float = 1.0, loaded: bool = False) -> Plan:
    """The plan of ``stylize_fast`` for a ``height`` x ``width`` output.

    ``options`` is a ``FastOptions``. Its ``tile`` is used when set; otherwise the default tile,
    or, given ``available`` bytes, the largest tile of :data:`FAST_TILES` that fits in them
    (the smallest one when none does: :func:`check_fits` then says so). ``model_factor`` scales
    the networks' time (:func:`fast_model_factor` of the model that runs); ``loaded``: the
    networks are already in memory (a server, a batch worker), so no load time is counted.
    """
    tile = getattr(options, "tile", None)
    candidates = (tile,) if tile else (FAST_DEFAULT_TILE,) if available is None else FAST_TILES
    for t in candidates:
        peak, n, work = _fast_cost(height, width, t)
        if available is None or peak <= available:
            break
    per_mpx = FAST_SECONDS_PER_MPX * model_factor * (FAST_TILED_SLOWDOWN if n > 1 else 1.0) / max(1, threads)
    seconds = (0.0 if loaded else FAST_LOAD_SECONDS) + (work + FAST_STYLE_PIXELS / 2) / 1e6 * per_mpx
    return Plan("fast", (height, width), ((height, width),), (), t if n > 1 else None, n, peak, seconds)


def largest_size_that_fits(height: int, width: int, fits: Any) -> int | None:
    """Largest longest side (aspect kept, a multiple of 64 above 64 px) for which ``fits(h, w)``.

    ``fits`` is a predicate on an output size, e.g. ``lambda h, w: plan_optimize(h, w, o).peak_bytes
    <= available``. ``None`` when not even 64 px fits.

    >>> largest_size_that_fits(300, 400, lambda h, w: h * w <= 100_000)
    320
    """
    lo, hi = 1, max(1, max(height, width)) // 64
    if not fits(*fit_size(height, width, size=64)):
        return None
    while lo < hi:  # largest k with fits(size = 64 k)
        mid = (lo + hi + 1) // 2
        if fits(*fit_size(height, width, size=64 * mid)):
            lo = mid
        else:
            hi = mid - 1
    return 64 * lo


def check_fits(plan: Plan, available: int | None, hints: Sequence[str] = ()) -> None:
    """Refuse a run whose estimated peak memory is more than ``available`` bytes.

    Raises:
        StyleTransferError: one line, e.g. "needs about 38 GB, this machine has 22 GB
            available; try --size 2048 or --method fast".
    """
    if available is None or plan.peak_bytes <= available:
        return
    h, w = plan.size
    what = f"{w}x{h} with --method {plan.method}" + (f" (tile {plan.tile} px)" if plan.tile else "")
    hint = f"; try {' or '.join(hints)}" if hints else ""
    raise StyleTransferError(f"{what} needs about {format_bytes(plan.peak_bytes)} of memory, this machine has "
                             f"{format_bytes(available)} available{hint}")


def available_memory() -> int | None:
    """Bytes this process can still use: the smaller of ``MemAvailable`` and the cgroup's
    remaining limit; ``None`` where neither can be read (then nothing is refused)."""
    values = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    values.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                values.append(int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    env = os.environ.get("PAINTERLY_AVAILABLE_MEMORY")  # tests and containers that know better
    if env:
        try:
            values.append(int(float(env)))
        except ValueError:
            pass
    return max(0, min(values)) if values else None
