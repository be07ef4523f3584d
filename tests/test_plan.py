"""Run estimates (``painterly.plan``): pure arithmetic on sizes and options."""
import pytest

from painterly import plan
from painterly.errors import StyleTransferError
from painterly.stylizers.fast import FastOptions
from painterly.stylizers.optimize import OptimizeOptions, scale_sizes, step_schedule


def test_optimize_plan_is_the_stylizers_schedule():
    o = OptimizeOptions()
    p = plan.plan_optimize(768, 1024, o)
    sizes = scale_sizes(768, 1024, o)
    assert p.scales == tuple(sizes)
    assert p.steps == tuple(step_schedule(len(sizes), o, [h * w for h, w in sizes]))
    assert p.size == (768, 1024) and p.method == "optimize" and p.tiles == 1


def test_optimize_memory_grows_with_the_finest_scale_and_the_history():
    small, big = plan.plan_optimize(512, 512, OptimizeOptions()), plan.plan_optimize(1024, 1024, OptimizeOptions())
    assert plan.BASE_BYTES < small.peak_bytes < big.peak_bytes
    # measured on this machine (benchmarks/bench_memory.py): 1.13 GB at 512^2, 3.15 GB at 1024^2 (4 steps)
    one = plan.plan_optimize(1024, 1024, OptimizeOptions(steps=[4]))
    assert 2.9e9 < one.peak_bytes < 3.6e9
    # each L-BFGS pair is two image copies: 3 pairs after 4 steps; after 64 steps the history is full
    # (39 pairs at 1 Mpx: its 1 GB cap)
    long = plan.plan_optimize(1024, 1024, OptimizeOptions(steps=[64]))
    assert long.peak_bytes - one.peak_bytes == pytest.approx((39 - 3) * 24 * 1024 * 1024, rel=1e-6)


def test_optimize_time_follows_the_work_and_the_threads():
    o = OptimizeOptions(steps=[10])
    p = plan.plan_optimize(1024, 1024, o, threads=2)
    assert p.seconds == pytest.approx(10 * 1.048576 * plan.OPT_SECONDS_PER_MPX_STEP)
    assert plan.plan_optimize(1024, 1024, o, threads=1).seconds == pytest.approx(2 * p.seconds)
    assert p.seconds_per_step == pytest.approx((p.seconds / 10,))


def test_fast_plan_tiles_and_memory():
    whole = plan.plan_fast(1000, 1000, FastOptions())
    assert whole.tiles == 1 and whole.tile is None
    big = plan.plan_fast(2160, 3840, FastOptions())
    assert big.tiles == 3 * 4 and big.tile == 1024
    # memory is bound by the tile: a smaller tile needs less (and more, slower, tiles)
    small = plan.plan_fast(2160, 3840, FastOptions(tile=256))
    assert small.peak_bytes < big.peak_bytes and small.tiles > big.tiles and small.seconds > big.seconds
    # a tile that fits is picked when memory is short; the caller's tile is kept
    fits = plan.plan_fast(2160, 3840, FastOptions(tile=512)).peak_bytes
    assert plan.plan_fast(2160, 3840, FastOptions(), available=fits).tile == 512
    assert plan.plan_fast(2160, 3840, FastOptions(tile=768), available=fits).tile == 768


def test_fast_tiles_match_the_stylizer():
    from painterly.stylizers import fast

    for length, tile in ((1000, 1024), (2160, 1024), (3840, 512), (4000, 128)):
        cut = list(fast._tiles(length, tile, fast.ENCODER_HALO, 8))
        n, longest = plan._tile_windows(length, tile, fast.ENCODER_HALO)
        assert n == len(cut)
        assert longest >= max(stop - start for start, stop, _, _ in cut)


def test_check_fits_says_what_to_try():
    p = plan.plan_optimize(8000, 8000, OptimizeOptions())
    plan.check_fits(p, None)  # unknown memory: nothing is refused
    plan.check_fits(p, p.peak_bytes)
    with pytest.raises(StyleTransferError) as e:
        plan.check_fits(p, 22_000_000_000, ["--size 2048", "--method fast"])
    msg = str(e.value)
    assert msg.startswith("8000x8000 with --method optimize needs about ")
    assert msg.endswith("this machine has 22 GB available; try --size 2048 or --method fast")
    assert "\n" not in msg


def test_largest_size_that_fits():
    fits = lambda h, w: plan.plan_optimize(h, w, OptimizeOptions()).peak_bytes <= 4e9  # noqa: E731
    side = plan.largest_size_that_fits(3000, 4000, fits)
    assert side % 64 == 0 and fits(*_fit(3000, 4000, side)) and not fits(*_fit(3000, 4000, side + 64))
    assert plan.largest_size_that_fits(3000, 4000, lambda h, w: False) is None


def _fit(h, w, side):
    from painterly.image import fit_size

    return fit_size(h, w, size=side)


def test_formats():
    assert plan.format_bytes(38.2e9) == "38 GB" and plan.format_bytes(1.23e9) == "1.2 GB"
    assert plan.format_bytes(5e8) == "500 MB"
    assert plan.format_seconds(42.4) == "42 s" and plan.format_seconds(107) == "1 min 47 s"
    assert plan.format_seconds(7500) == "2 h 5 min"


def test_available_memory_can_only_be_lowered_by_the_environment(monkeypatch):
    real = plan.available_memory()
    assert real is None or real > 0
    monkeypatch.setenv("PAINTERLY_AVAILABLE_MEMORY", "1000000")
    assert plan.available_memory() == 1_000_000
    monkeypatch.setenv("PAINTERLY_AVAILABLE_MEMORY", str(10 ** 18))
    assert plan.available_memory() == real


def test_describe_lists_the_plan():
    text = plan.plan_optimize(341, 512, OptimizeOptions()).describe()
    assert "output 512x341, method optimize" in text and "256x170: 100 steps, 512x341: 25 steps" in text
    assert "tiles of 1024 px" in plan.plan_fast(2160, 3840, FastOptions()).describe()
