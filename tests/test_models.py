"""AdaIN maths, decoder/discriminator shapes and the GAN losses."""
import pytest
import torch

from styletransfer.losses import mean_std
from styletransfer.models import AdaIN, Decoder, PatchDiscriminator, adain, adain_stats, d_loss, g_loss


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


def test_adain_alpha_zero_returns_content_and_one_returns_adain():
    c, s = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 3, 3)
    layer = AdaIN()
    torch.testing.assert_close(layer(c, s, alpha=0.0), c)
    torch.testing.assert_close(layer(c, s, alpha=1.0), adain(c, s))
    with pytest.raises(ValueError):
        layer(c, s, alpha=1.5)


def test_adain_stats_equals_adain():
    c, s = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 3, 3)
    m, sd = mean_std(s)
    torch.testing.assert_close(adain_stats(c, m, sd), adain(c, s))


def test_adain_does_not_modify_inputs():
    c, s = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 3, 3)
    c0, s0 = c.clone(), s.clone()
    adain(c, s)
    assert torch.equal(c, c0) and torch.equal(s, s0)


def test_decoder_shapes_mirror_encoder():
    dec = Decoder(in_channels=32, width=0.125, input_scale=2.0)
    assert dec(torch.rand(2, 32, 4, 6)).shape == (2, 3, 32, 48)
    full = Decoder()
    assert full.net[1].in_channels == 512 and full.net[-1].out_channels == 3
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
