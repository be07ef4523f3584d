"""The public API: every name a user may import stays (removing one is a breaking change, so this
test must be edited on purpose), and ``__all__`` lists only what exists."""
from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "painterly": [
        "BatchOptions", "BatchReport", "FastOptions", "FastStylizer", "ImageError", "LoadedImage",
        "OptimizeOptions", "StyleTransferError", "VideoOptions", "as_tensor", "batch", "fast_available", "fit_size",
        "from_array", "load_image", "match_color", "resize", "resolve_device", "resolve_method", "save_image",
        "stylize", "stylize_fast", "stylize_optimize", "stylize_video",
        "transfer_luminance",
    ],
    "painterly.encoders": ["VGG19Encoder", "layer_channels", "vgg19"],
    "painterly.encoders.student": ["fold_activation_scales", "pruned_student", "read_student", "save_student"],
    "painterly.stylizers.fast_model": ["BUILTIN_MODELS", "FastModel", "read_model", "save_bundle"],
    "painterly.cli": ["CLIError", "build_parser", "main"],
    "painterly.training": ["TrainConfig", "Trainer"],
    "painterly.video": ["VideoError", "VideoInfo", "VideoOptions", "VideoResult", "check_video_output", "feather",
                            "parse_time", "probe_video", "restore_detail", "stylize_video", "warping_error"],
    "painterly.training.distill": ["DistillConfig", "Distiller"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_exist_and_are_listed(module):
    mod = importlib.import_module(module)
    missing = [n for n in PUBLIC[module] if not hasattr(mod, n)]
    assert not missing, f"{module} lost public names: {missing}"
    unlisted = [n for n in PUBLIC[module] if n not in getattr(mod, "__all__", [])]
    assert not unlisted, f"{module}.__all__ lacks {unlisted}"
    dangling = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not dangling, f"{module}.__all__ names what it does not have: {dangling}"
