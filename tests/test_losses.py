"""Losses against values worked out by hand."""
import math

import pytest
import torch

from painterly.losses import (
    content_loss,
    gram_matrix,
    gram_style_loss,
    mean_std,
    mean_std_loss,
    total_variation,
)


def test_gram_matrix_by_hand():
    # C=2 channels, M=4 positions: f1 = [1,2,3,4], f2 = [0,1,0,1]
    f = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 1.0]]).reshape(1, 2, 2, 2)
    g = gram_matrix(f)
    # <f1,f1>=30, <f1,f2>=6, <f2,f2>=2, divided by M=4
    expected = torch.tensor([[[7.5, 1.5], [1.5, 0.5]]])
    assert torch.allclose(g, expected)


def test_gram_matrix_batch_and_shape_check():
    f = torch.arange(24.0).reshape(2, 3, 2, 2)
    g = gram_matrix(f)
    assert g.shape == (2, 3, 3)
    assert torch.allclose(g[1], gram_matrix(f[1:2])[0])
    with pytest.raises(ValueError):
        gram_matrix(torch.ones(3, 4, 4))


def test_gram_style_loss_is_sum_of_squares_over_c2():
    f = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 1.0]]).reshape(1, 2, 2, 2)
    target = torch.tensor([[[7.0, 1.0], [1.0, 1.5]]])
    # G - T = [[0.5, 0.5], [0.5, -1.0]] -> squares 0.25+0.25+0.25+1 = 1.75; / C^2 = 4
    assert gram_style_loss(f, target).item() == pytest.approx(1.75 / 4)
    assert gram_style_loss(f, gram_matrix(f)).item() == 0.0


def test_gram_style_loss_rejects_wrong_channels():
    with pytest.raises(ValueError):
        gram_style_loss(torch.ones(1, 3, 2, 2), torch.ones(1, 2, 2))


def test_content_loss_is_mse():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    b = torch.tensor([1.0, 0.0, 3.0, 7.0]).reshape(1, 1, 2, 2)
    # diffs 0, 2, 0, -3 -> (4 + 9) / 4
    assert content_loss(a, b).item() == pytest.approx(13 / 4)
    with pytest.raises(ValueError):
        content_loss(a, torch.ones(1, 1, 3, 3))


def test_mean_std_by_hand():
    f = torch.tensor([1.0, 3.0, 5.0, 7.0]).reshape(1, 1, 2, 2)
    mean, std = mean_std(f, eps=0.0)
    assert mean.item() == pytest.approx(4.0)
    assert std.item() == pytest.approx(math.sqrt(5.0))  # population variance (9+1+1+9)/4


def test_mean_std_loss_by_hand():
    a = torch.tensor([1.0, 3.0, 5.0, 7.0]).reshape(1, 1, 2, 2)  # mean 4, std sqrt(5+eps)
    b = a * 2  # mean 8, std 2*sqrt(5) (eps aside)
    m1, s1 = mean_std(a)
    m2, s2 = mean_std(b)
    expected = (4.0 ** 2) + (s1 - s2).item() ** 2
    assert mean_std_loss(a, b).item() == pytest.approx(expected, rel=1e-5)
    assert (s2 - s1).item() == pytest.approx(math.sqrt(5.0), rel=1e-4)
    assert mean_std_loss(a, a).item() == 0.0


def test_total_variation_by_hand():
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]).reshape(1, 1, 2, 3)
    # vertical diffs: 2, 1, -1 -> mean of squares (4+1+1)/3 = 2
    # horizontal diffs: 1, 2, 0, 0 -> mean of squares (1+4)/4 = 1.25
    assert total_variation(x).item() == pytest.approx(2 + 1.25)
    assert total_variation(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0


def test_gradients_flow_to_input():
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    (gram_style_loss(x, torch.zeros(1, 3, 3)) + total_variation(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
