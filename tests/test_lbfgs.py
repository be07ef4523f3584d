"""The pixel L-BFGS: two-loop direction by hand, convergence, the box, the trust cap."""
from collections import deque

import pytest
import torch

from painterly.stylizers.lbfgs import lbfgs_direction, lbfgs_minimize


def quadratic(diag: torch.Tensor, target: torch.Tensor, calls: list):
    """f(x) = 1/2 sum d_i (x_i - t_i)^2, gradient d * (x - t); records every evaluation."""
    def f(x):
        r = x - target
        calls.append(x.clone())
        return float(0.5 * (diag * r * r).sum()), diag * r
    return f


def test_direction_without_history_is_scaled_steepest_descent():
    g = torch.tensor([2.0, -4.0, 1.0])
    d = lbfgs_direction(g, deque(), first_step=0.5)
    assert torch.allclose(d, torch.tensor([-0.25, 0.5, -0.125]))  # largest change = 0.5


def test_direction_with_one_pair_is_newton_on_a_1d_quadratic():
    # f = 3/2 x^2: s = 1, y = 3 s -> H = 1/3, direction = -g / 3 (the exact minimiser step)
    s, y = torch.tensor([1.0]), torch.tensor([3.0])
    d = lbfgs_direction(torch.tensor([6.0]), deque([(s, y, 1 / 3.0)]), first_step=1.0)
    assert torch.allclose(d, torch.tensor([-2.0]))


def test_direction_does_not_modify_the_gradient():
    g = torch.tensor([1.0, 2.0])
    pair = (torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.5]), 1 / 2.0)
    lbfgs_direction(g, deque([pair]), 1.0)
    assert torch.equal(g, torch.tensor([1.0, 2.0]))


def test_converges_on_an_ill_conditioned_quadratic_with_exactly_the_budget():
    torch.manual_seed(0)
    diag = torch.logspace(0, 3, 50)  # condition number 1000
    target = torch.rand(50) * 0.8 + 0.1  # inside the box
    calls: list = []
    f = quadratic(diag, target, calls)
    x0 = torch.zeros(50)
    x = lbfgs_minimize(f, x0, steps=100, history=20)
    assert len(calls) == 100
    assert torch.equal(x0, torch.zeros(50))  # the start point is not modified
    assert f(x)[0] < 1e-6 * f(x0)[0]


def test_iterates_stay_in_the_box_and_the_bound_is_reached():
    diag = torch.ones(4)
    target = torch.tensor([-0.5, 0.3, 0.7, 1.8])  # two coordinates outside [0, 1]
    calls: list = []
    x = lbfgs_minimize(quadratic(diag, target, calls), torch.full((4,), 0.5), steps=30)
    assert all(float(c.min()) >= 0.0 and float(c.max()) <= 1.0 for c in calls)
    assert torch.allclose(x, torch.tensor([0.0, 0.3, 0.7, 1.0]), atol=1e-4)


@pytest.mark.parametrize("guarded", [True, False])
def test_wild_steps_are_rejected_and_the_run_recovers(guarded):
    # lr = 10 makes every quasi-Newton step 10x too long: x -> -9x -> 81x ... Unguarded the
    # iterates run off; the trust cap must refuse those steps and still converge.
    calls: list = []
    f = quadratic(torch.ones(8), torch.zeros(8), calls)
    x = lbfgs_minimize(f, torch.ones(8), steps=40, lr=10.0, bounds=None, max_step=100.0,
                       reject=2.0 if guarded else float("inf"))
    start, final = f(torch.ones(8))[0], f(x)[0]
    assert max(0.5 * float((c * c).sum()) for c in calls) > 2 * start  # wild steps were tried either way
    if guarded:
        assert final < 1e-6 * start
    else:
        assert final > start  # what the guard is for


@pytest.mark.parametrize("steps", [1, 2])
def test_tiny_budgets(steps):
    calls: list = []
    lbfgs_minimize(quadratic(torch.ones(3), torch.zeros(3), calls), torch.ones(3), steps=steps)
    assert len(calls) == steps


def test_the_cap_is_measured_on_the_step_actually_taken():
    # Pixel 0 sits on the upper bound and its target (100) is far outside the box; pixel 1 is
    # free (0.2 -> 0.6). After one curvature pair the direction is the exact Newton step
    # (+99, +0.4). Projected, pixel 0 does not move, so the step taken is 0.4 <= the cap (1)
    # and pixel 1 lands on its target. Capping before the projection divided it by 99.
    calls: list = []
    f = quadratic(torch.ones(2), torch.tensor([100.0, 0.6]), calls)
    x = lbfgs_minimize(f, torch.tensor([1.0, 0.2]), steps=3, max_step=1.0)
    assert float(x[0]) == 1.0
    assert abs(float(x[1]) - 0.6) < 1e-4, x


def test_the_two_loop_recursion_makes_no_python_floats(monkeypatch):
    # On CUDA every float(tensor) waits for the device: the direction must stay on it.
    torch.manual_seed(0)
    pairs = deque()
    for _ in range(5):
        s, y = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
        y = y + 3 * s  # positive curvature
        pairs.append((s, y, 1.0 / torch.dot(y.reshape(-1), s.reshape(-1))))
    g = torch.randn(1, 3, 8, 8)
    expected = lbfgs_direction(g, pairs, 1.0)

    def no_sync(*a, **k):
        raise AssertionError("a Python number was made from a tensor")

    monkeypatch.setattr(torch.Tensor, "__float__", no_sync)
    monkeypatch.setattr(torch.Tensor, "item", no_sync)
    d = lbfgs_direction(g, pairs, 1.0)
    assert torch.allclose(d, expected)
