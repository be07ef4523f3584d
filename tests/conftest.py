"""Shared fixtures: a tiny stand-in VGG19 (random weights, 1/16 of the width) and tiny images.

Tests that need the real ImageNet weights are marked ``@pytest.mark.slow`` and stay at <= 64 px.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from painterly.encoders import VGG19Encoder

# The test tensors are tiny: with several OpenMP threads the synchronisation costs more than the
# work (10x slower on a busy 2-core machine). One intra-op thread keeps the suite fast everywhere.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _float32_unless_asked(monkeypatch):
    """Every test runs in plain float32 on every CPU (bf16 autocast off, also in the subprocesses
    it starts), so exact comparisons mean the same on AVX2 and AVX512-BF16 machines. The bf16
    path has its own tests, which turn it on with the :func:`bf16` fixture."""
    monkeypatch.setenv("PAINTERLY_BF16", "off")


@pytest.fixture
def bf16(monkeypatch):
    """Force the bf16 path on any CPU (emulated where the CPU lacks it: slow, so tiny networks
    only), exactly as a CPU with native bf16 runs it."""
    monkeypatch.setenv("PAINTERLY_BF16", "on")


@pytest.fixture(scope="session")
def tiny_encoder() -> VGG19Encoder:
    """VGG19 with 1/16 of the channels and a fixed random initialisation (fast, deterministic)."""
    torch.manual_seed(1234)
    return VGG19Encoder(width_divisor=16)


@pytest.fixture(scope="session")
def tiny_levels(tiny_encoder) -> dict:
    """A random decoder per level for the tiny encoder (relu4_1 32 channels ... relu1_1 4), each
    with its input scaled to unit features and a larger last gain, so its output follows its
    input: the four-level cascade of the built-in model, in miniature. Read-only."""
    from painterly.encoders.vgg import layer_channels
    from painterly.models import Decoder
    from painterly.models.decoder import kaiming_init

    torch.manual_seed(11)
    decs = {}
    for level in ("relu1_1", "relu2_1", "relu3_1", "relu4_1"):
        f = tiny_encoder(torch.rand(1, 3, 64, 64), [level])[level]
        dec = Decoder(layer_channels(level, tiny_encoder.width_divisor), 0.125, float(f.std()), level=level)
        decs[level] = kaiming_init(dec, last_gain=0.5, last_bias=0.5).eval().requires_grad_(False)
    return decs


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, tiny_encoder, tiny_levels):
    """A real four-level model file that carries its own (tiny) encoder, as the slim model does:
    whatever loads it by path (CLI, video, web, export) runs the tiny networks, unpatched."""
    from painterly.stylizers.fast_model import save_bundle
    from painterly import checkpoint as ckpt

    folder = tmp_path_factory.mktemp("tiny-model")
    files = []
    for level, dec in tiny_levels.items():
        meta = {"decoder": dec.config, "encoder": {"normalization": "caffe", "pooling": "max", "width_divisor": 16}}
        files.append(ckpt.atomic_save({f"decoder.{k}": v for k, v in dec.state_dict().items()},
                                      folder / f"{level}.safetensors", meta))
    # its encoder stops at relu4_1, as the slim student does (the same weights as tiny_encoder's)
    student = VGG19Encoder(width_divisor=16, last_layer="relu4_1")
    student.load_state_dict({k: v for k, v in tiny_encoder.state_dict().items() if k in student.state_dict()})
    return save_bundle(files, folder / "tiny-model.safetensors", half=False, student=student)


def _smooth_image(seed: int, h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=g)
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (img + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


@pytest.fixture
def content_image() -> torch.Tensor:
    """A 48x64 smooth random 'photo' (1, 3, 48, 64) in [0, 1]."""
    return _smooth_image(1, 48, 64)


@pytest.fixture
def style_image() -> torch.Tensor:
    """A 64x64 high-frequency striped 'painting' (1, 3, 64, 64) in [0, 1]."""
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    r = 0.5 + 0.5 * torch.sin(x * 0.9 + y * 0.3)
    g = 0.5 + 0.5 * torch.sin(y * 1.3)
    b = 0.5 + 0.5 * torch.cos((x - y) * 0.7)
    return torch.stack([r, g, b])[None].float()


@pytest.fixture
def second_style() -> torch.Tensor:
    """A 64x64 blocky orange/blue checkerboard (1, 3, 64, 64)."""
    y, x = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    check = (((x // 8) + (y // 8)) % 2).float()
    return torch.stack([check, 0.5 * check, 1 - check])[None]


@pytest.fixture
def png_file(tmp_path):
    """Write an RGB uint8 array to a PNG and return its path: ``png_file(name, array=None)``."""
    from PIL import Image

    def make(name: str = "img.png", array: np.ndarray | None = None, mode: str | None = None):
        if array is None:
            rng = np.random.default_rng(0)
            array = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
        path = tmp_path / name
        Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
        return path

    return make
