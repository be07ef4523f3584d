"""Stylizers: optimisation (Gatys et al.) and feed-forward (AdaIN, in :mod:`.fast`)."""
from .optimize import OptimizeOptions, stylize_optimize

__all__ = ["OptimizeOptions", "stylize_optimize"]
