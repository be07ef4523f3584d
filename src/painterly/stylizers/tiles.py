"""Tiling and padding of the fast mode: big images in tiles without seams, a mirrored margin.

The encoder runs on overlapping tiles whose halo (64 px) covers the receptive field of relu4_1,
so the stitched feature map equals the full-image one away from the image border; the decoder
runs on overlapping feature tiles and only the centres are kept. Peak memory is set by the tile
size, not the image size (apart from the feature maps themselves).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..encoders.vgg import VGG19Encoder
from ..models import Decoder
from ..models.decoder import LEVEL_STRIDE

LAYER = "relu4_1"
ENCODER_HALO = 64  # px; relu4_1 sees ~68 px, and zero padding reaches ~34 px into a tile
DECODER_HALO = 8  # feature px (= 64 image px at relu4_1); the decoder's receptive field is ~7 feature px
MARGIN = 16  # px of mirrored border around the photo (see _with_margin)


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def _with_margin(image: torch.Tensor, margin: int = MARGIN) -> tuple[torch.Tensor, tuple[int, int], int]:
    """Mirror-pad ``image`` by ``margin`` px on every side, then to multiples of 8.

    VGG's zero padding makes features at the image border unlike any inside it, and the
    decoders turn that into a dark or bright frame (seen on every level); a mirrored margin moves
    that frame outside the picture, where it is cropped. Returns (padded, (h, w), margin).

    Shape:
        - image: (1, 3, h, w)
        - output: (1, 3, H, W), H = h + 2 margin rounded up to a multiple of 8; the picture is at
          [margin: margin + h, margin: margin + w]
    """
    h, w = image.shape[-2:]
    m = margin if min(h, w) > margin else 0
    x = F.pad(image, (m, m, m, m), mode="reflect") if m else image
    x, _ = _pad_to(x, 8)
    return x, (h, w), m


def _tiles(length: int, tile: int, halo: int, step: int = 1):
    """Yield (start, stop, keep_start, keep_stop) covering [0, length) with overlapping halos.

    ``start/stop`` is the window to compute (multiples of ``step``), ``keep`` the part of it to
    keep (absolute coordinates); kept parts tile [0, length) exactly once.
    """
    if length <= tile:
        yield 0, length, 0, length
        return
    pos = 0
    while pos < length:
        keep_stop = min(pos + tile, length)
        start = max(0, pos - halo)
        stop = min(length, keep_stop + halo)
        yield start // step * step, -(-stop // step) * step if stop < length else length, pos, keep_stop
        pos = keep_stop


@torch.no_grad()
def encode_tiled(encoder: VGG19Encoder, image: torch.Tensor, tile: int, layer: str = LAYER) -> torch.Tensor:
    """``layer`` features of an image whose sides are multiples of 8, computed tile by tile.

    Tile windows start on multiples of 8 px, so every pooling grid lines up with the whole
    image's and the stitched map equals the whole-image map.

    Shape:
        - image: (1, 3, H, W), H and W multiples of 8
        - output: (1, C, H/s, W/s), s = 8, 4, 2, 1 for relu4_1, relu3_1, relu2_1, relu1_1
    """
    _, _, h, w = image.shape
    s = LEVEL_STRIDE[layer]
    if h * w <= tile * tile:
        return encoder(image, [layer])[layer]
    out = None
    for y0, y1, ky0, ky1 in _tiles(h, tile, ENCODER_HALO, 8):
        for x0, x1, kx0, kx1 in _tiles(w, tile, ENCODER_HALO, 8):
            # a slice of a channels_last map is not channels_last-contiguous: convs on it take a slow path
            f = encoder(image[..., y0:y1, x0:x1].contiguous(memory_format=torch.channels_last), [layer])[layer]
            if out is None:
                out = f.new_empty(1, f.shape[1], h // s, w // s)
            out[..., ky0 // s: ky1 // s, kx0 // s: kx1 // s] = \
                f[..., (ky0 - y0) // s: (ky1 - y0) // s, (kx0 - x0) // s: (kx1 - x0) // s]
    return out


@torch.no_grad()
def decode_tiled(decoder: Decoder, features: torch.Tensor, tile: int) -> torch.Tensor:
    """Decode a feature map tile by tile (``tile`` in image px).

    Shape:
        - features: (1, C, h, w)
        - output: (1, 3, s*h, s*w), s = the decoder's stride (8 for relu4_1 ... 1 for relu1_1)
    """
    _, _, h, w = features.shape
    s = LEVEL_STRIDE[getattr(decoder, "level", LAYER)]
    ft = max(16, tile // s)
    if h * w <= ft * ft:
        return decoder(features)
    out = features.new_empty(1, 3, h * s, w * s)
    for y0, y1, ky0, ky1 in _tiles(h, ft, DECODER_HALO):
        for x0, x1, kx0, kx1 in _tiles(w, ft, DECODER_HALO):
            y = decoder(features[..., y0:y1, x0:x1].contiguous())
            out[..., ky0 * s: ky1 * s, kx0 * s: kx1 * s] = \
                y[..., (ky0 - y0) * s: (ky1 - y0) * s, (kx0 - x0) * s: (kx1 - x0) * s]
    return out
