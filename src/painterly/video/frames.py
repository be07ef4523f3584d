"""One frame through the clip's stylizer: the networks and styles fixed once per clip, the
optimize method warm-started from the previous output, and the temporal blend."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .flow import TemporalBlender
from .options import VideoOptions

class FrameStylizer:
    """Stylizes one (1, 3, H, W) frame with the clip's fixed styles and networks."""

    def __init__(self, styles: list[torch.Tensor], options: VideoOptions, encoder, decoder, fast=None) -> None:
        self.styles, self.options = styles, options
        self.encoder, self.decoder, self.fast = encoder, decoder, fast
        self._prepared = False

    def _prepare(self, first: torch.Tensor) -> None:
        """Once per clip: networks, and the styles recoloured to the first frame for ``histogram``."""
        from ..device import resolve_device
        from ..image import match_color

        o = self.options
        if o.method == "fast":
            from ..stylizers.fast import FastOptions, FastStylizer

            fo = o.fast or FastOptions()
            fo.validate(len(self.styles))
            if self.fast is not None:  # given, built once (a server's)
                pass
            elif self.decoder is None:  # every level of the model, as a photo gets, with the encoder it needs
                self.fast = FastStylizer.from_model(fo.model, fo.device, fo.backend, encoder=self.encoder)
            else:
                from ..encoders import vgg19

                self.fast = FastStylizer(self.encoder or vgg19(device=resolve_device(fo.device)), self.decoder)
            if fo.preserve_color == "histogram":
                self.styles = [match_color(s, first) for s in self.styles]
                fo = dataclasses.replace(fo, preserve_color=None)
            self.frame_options = fo
        else:
            from ..stylizers.optimize import OptimizeOptions

            oo = o.optimize or OptimizeOptions()
            oo.validate(len(self.styles))
            if oo.preserve_color == "histogram":
                self.styles = [match_color(s, first) for s in self.styles]
                oo = dataclasses.replace(oo, preserve_color=None)
            if self.encoder is None:
                from ..encoders import vgg19

                self.encoder = vgg19(device=resolve_device(oo.device), pooling=oo.pooling, weights=oo.weights)
            self.frame_options = oo
            # warm-started frames: one scale, the output's, so the start keeps all its detail
            self.warm_options = dataclasses.replace(oo, steps=[o.warm_steps])
        self._prepared = True

    def __call__(self, frame: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
        """Stylize ``frame``; ``init`` (optimize only) is a start image for a warm-started frame."""
        if not self._prepared:
            self._prepare(frame)
        if self.options.method == "fast":
            return self.fast(frame, self.styles, self.frame_options)
        from ..stylizers.optimize import stylize_optimize

        if init is None:
            return stylize_optimize(frame, self.styles, self.frame_options, encoder=self.encoder)
        return stylize_optimize(frame, self.styles, self.warm_options, encoder=self.encoder, init_image=init)


class FramePipeline:
    """An RGB frame in, its stylized (and blended) frame out, frame after frame.

    ``blender`` (``None``: every frame on its own) follows the previous output; with the optimize
    method it also gives every frame after the first its warm start (Ruder et al. 2016).
    """

    def __init__(self, stylizer: FrameStylizer, blender: TemporalBlender | None) -> None:
        self.stylizer, self.blender = stylizer, blender
        self.warm = blender is not None and stylizer.options.method == "optimize"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (H, W, 3) uint8 -> (H, W, 3) float32 in [0, 1] (not clipped)."""
        from ..image import from_array

        init = self.blender.warm_start(rgb) if self.warm else None
        styled = self.stylizer(from_array(rgb), None if init is None else from_array(init))
        styled = styled[0].permute(1, 2, 0).numpy().astype(np.float32)
        if self.blender is not None:
            styled = self.blender(rgb, styled)
        return styled
