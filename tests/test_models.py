"""AdaIN maths, decoder/discriminator shapes and the GAN losses."""
import pytest
import torch

from painterly.losses import mean_std
from painterly.models import Decoder, PatchDiscriminator, adain, adain_affine, d_loss, g_loss


def test_adain_matches_style_statistics():
    torch.manual_seed(0)
    content = torch.randn(2, 8, 6, 5) * 3 + 1
    style = torch.randn(2, 8, 7, 4) * 0.5 - 2
    out = adain(content, style)
    m_o, s_o = mean_std(out)
    m_s, s_s = mean_std(style)
    torch.testing.assert_close(m_o, m_s, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(s_o, s_s, atol=1e-4, rtol=1e-3)


def test_adain_hand_computed():
    # content channel [0, 2] has mean 1, std 1; style [10, 14] has mean 12, std 2 -> [10, 14]
    c = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2)
    s = torch.tensor([10.0, 14.0]).view(1, 1, 1, 2)
    torch.testing.assert_close(adain(c, s, eps=0.0), torch.tensor([10.0, 14.0]).view(1, 1, 1, 2))


def test_adain_affine_equals_adain():
    c, s = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 3, 3)
    m, sd = mean_std(s)
    scale, shift = adain_affine(c, m, sd)
    torch.testing.assert_close(scale * c + shift, adain(c, s))


def test_adain_does_not_modify_inputs():
    c, s = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 3, 3)
    c0, s0 = c.clone(), s.clone()
    adain(c, s)
    assert torch.equal(c, c0) and torch.equal(s, s0)


def test_decoder_shapes_mirror_encoder():
    dec = Decoder(in_channels=32, width=0.125, input_scale=2.0)
    assert dec(torch.rand(2, 32, 4, 6)).shape == (2, 3, 32, 48)
    full = Decoder()
    assert full.net[0].in_channels == 512 and full.net[-1].out_channels == 3
    assert sum(p.numel() for p in full.parameters()) == 3_505_219  # the AdaIN paper's decoder


def test_decoder_input_scale_divides_features():
    torch.manual_seed(0)
    a = Decoder(in_channels=8, width=0.125, input_scale=4.0)
    b = Decoder(in_channels=8, width=0.125, input_scale=1.0)
    b.load_state_dict(a.state_dict(), strict=False)
    b.input_scale.fill_(1.0)
    f = torch.rand(1, 8, 3, 3)
    torch.testing.assert_close(a(f), b(f / 4.0))


def test_discriminator_patch_output():
    d = PatchDiscriminator(width=8)
    assert d(torch.rand(2, 3, 64, 64)).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("kind", ["hinge", "nonsat"])
def test_gan_losses_prefer_correct_answers(kind):
    good_real, good_fake = torch.full((4,), 3.0), torch.full((4,), -3.0)
    assert d_loss(good_real, good_fake, kind) < d_loss(good_fake, good_real, kind)
    assert g_loss(good_real, kind) < g_loss(good_fake, kind)
    with pytest.raises(ValueError):
        d_loss(good_real, good_fake, "wgan")


def test_hinge_values_hand_computed():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 1.0])
    # relu(1-0.5)=0.5, relu(1-2)=0 -> 0.25 ; relu(1-0.5)=0.5, relu(1+1)=2 -> 1.25
    assert d_loss(real, fake, "hinge").item() == pytest.approx(1.5)
    assert g_loss(fake, "hinge").item() == pytest.approx(-0.25)


@pytest.mark.parametrize("level", ["relu4_1", "relu3_1", "relu2_1", "relu1_1"])
def test_decoder_files_of_the_old_layout_load(level):
    """Old files had a ReflectionPad2d module before each conv (net.1 was the first conv)."""
    from torch import nn

    from painterly.models.decoder import _legacy_conv_indices

    torch.manual_seed(0)
    dec = Decoder(in_channels=16, width=0.125, level=level)
    old = _legacy_conv_indices(dec.net)
    new = [i for i, m in enumerate(dec.net) if isinstance(m, nn.Conv2d)]
    legacy = {k: v for k, v in dec.state_dict().items() if not k.startswith("net.")}
    for o, n in zip(old, new):
        for part in ("weight", "bias"):
            legacy[f"net.{o}.{part}"] = dec.state_dict()[f"net.{n}.{part}"]
    fresh = Decoder(in_channels=16, width=0.125, level=level)
    fresh.load_state_dict(legacy)
    x = torch.rand(1, 16, 4, 4)
    torch.testing.assert_close(fresh(x), dec(x))


def test_reflect_padded_conv_equals_pad_then_conv():
    from torch import nn

    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    plain = nn.Conv2d(3, 4, 3)
    plain.load_state_dict(conv.state_dict())
    x = torch.rand(1, 3, 9, 7)
    torch.testing.assert_close(conv(x), plain(nn.ReflectionPad2d(1)(x)))
