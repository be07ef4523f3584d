"""Whitening-colouring transform: checked against the covariance identities it promises."""
import pytest
import torch

from painterly.models import wct as wct_mod
from painterly.models.wct import wct, wct_style_stats


def _cov(f):
    x = f[0].reshape(f.shape[1], -1).double()
    x = x - x.mean(1, keepdim=True)
    return x @ x.T / (x.shape[1] - 1)


def _correlated(c=6, hw=(12, 10), seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g)
    f = (mix @ torch.randn(c, hw[0] * hw[1], generator=g)).reshape(1, c, *hw)
    return f + torch.randn(1, c, 1, 1, generator=g) * 5


def test_output_has_the_style_mean_and_covariance():
    content, style = _correlated(seed=1), _correlated(seed=2) * 3
    out = wct(content, *wct_style_stats(style, eps=1e-9), eps=1e-9)
    assert out.shape == content.shape
    torch.testing.assert_close(out.mean((2, 3)), style.mean((2, 3)), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(_cov(out), _cov(style), atol=1e-3, rtol=1e-3)


def test_a_photo_coloured_with_its_own_statistics_is_unchanged():
    f = _correlated(seed=3)
    torch.testing.assert_close(wct(f, *wct_style_stats(f, eps=1e-9), eps=1e-9), f, atol=1e-3, rtol=1e-4)


def test_hand_computed_diagonal_case():
    # independent channels: WCT reduces to per-channel standardisation then the style's std/mean
    content = torch.tensor([[1.0, 3.0], [0.0, 4.0]]).reshape(1, 1, 2, 2)  # mean 2, var (unbiased) 10/3
    style = torch.tensor([[10.0, 14.0], [12.0, 12.0]]).reshape(1, 1, 2, 2)  # mean 12, var 8/3
    mean, colour = wct_style_stats(style, eps=0.0)
    assert mean.item() == pytest.approx(12.0)
    assert colour.item() == pytest.approx((8 / 3) ** 0.5, rel=1e-5)
    out = wct(content, mean, colour, eps=0.0)
    # (x - 2) / sqrt(10/3) * sqrt(8/3) + 12
    torch.testing.assert_close(out, (content - 2.0) * 0.8 ** 0.5 + 12.0, atol=1e-4, rtol=0)


def test_chunked_statistics_equal_the_direct_ones(monkeypatch):
    f = _correlated(c=4, hw=(9, 7), seed=4)
    whole = wct(f, *wct_style_stats(f * 2 + 1))
    monkeypatch.setattr(wct_mod, "_CHUNK", 8)  # 2 columns a chunk
    torch.testing.assert_close(wct(f, *wct_style_stats(f * 2 + 1)), whole, atol=1e-4, rtol=1e-4)


def test_the_input_is_not_modified():
    f = _correlated(seed=5)
    before = f.clone()
    wct(f, *wct_style_stats(_correlated(seed=6)))
    assert torch.equal(f, before)


def test_batched_features_are_refused():
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        wct_style_stats(torch.randn(2, 3, 4, 4))
