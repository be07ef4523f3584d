"""Whitening and colouring transform (WCT; Li et al., "Universal Style Transfer via Feature
Transforms", NeurIPS 2017, sec. 3.1).

With content features ``f_c`` and style features ``f_s`` flattened to (C, positions) and centred
(means ``m_c``, ``m_s``)::

    whitening   f_w  = E_c D_c^(-1/2) E_c^T (f_c - m_c)      cov(f_w) = I
    colouring   f_cs = E_s D_s^(1/2)  E_s^T f_w + m_s         cov(f_cs) = cov(f_s)

where ``cov(f) = E D E^T`` (eigendecomposition). AdaIN matches only each channel's mean and std
(the diagonal of the covariance); WCT matches the whole covariance, so correlations between
channels (which textures go with which colours) carry over too. The style side
(``m_s`` and ``E_s D_s^(1/2) E_s^T``) depends on the style alone, so it is computed once per style
(:func:`wct_style_stats`) and cached by the stylizer.

Numerics: covariances are summed and decomposed in float64 (VGG's Caffe-space features reach
the hundreds, so their covariance spans many decades), applied in float32 chunk by chunk (the
relu1_1 map of a 4K image has 530M values), and regularised with a ridge of ``eps`` times the mean
eigenvalue: directions the content barely uses are not blown up into noise by the whitening.
"""
from __future__ import annotations

import torch

_CHUNK = 1 << 24  # values per chunk (C x columns) when streaming over positions


def _columns(f: torch.Tensor) -> int:
    return max(1, _CHUNK // f.shape[0])


def _mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel mean (C, 1) and covariance (C, C), float64, of features (C, P), in chunks.

    Each chunk is centred and multiplied in float32 (a BLAS sgemm: the relu1_1 map of a 512^2
    image is 64 x 262144) and the chunks are summed in float64.
    """
    c, p = f.shape
    mean = torch.zeros(c, 1, dtype=torch.float64, device=f.device)
    for i in range(0, p, _columns(f)):
        mean += f[:, i: i + _columns(f)].sum(1, keepdim=True, dtype=torch.float64)
    mean /= p
    cov = torch.zeros(c, c, dtype=torch.float64, device=f.device)
    m32 = mean.float()
    for i in range(0, p, _columns(f)):
        x = f[:, i: i + _columns(f)].float() - m32
        cov += (x @ x.T).double()
    return mean, cov / max(1, p - 1)


def _matrix_power(cov: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    """``(cov + eps * mean_eigenvalue * I) ** power`` for a symmetric PSD matrix (float64)."""
    evals, evecs = torch.linalg.eigh(cov)
    ridge = eps * float(evals.clamp_min(0).mean()) + 1e-12
    scaled = (evals.clamp_min(0) + ridge) ** power
    return (evecs * scaled) @ evecs.T


def _flat(features: torch.Tensor) -> torch.Tensor:
    if features.ndim != 4 or features.shape[0] != 1:
        raise ValueError(f"expected features of shape (1, C, H, W), got {tuple(features.shape)}")
    return features[0].contiguous().reshape(features.shape[1], -1)  # channels_last: one copy, then rows


def wct_style_stats(style: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """The style's side of WCT: its channel mean and colouring matrix ``E_s D_s^(1/2) E_s^T``.

    Shape:
        - style: (1, C, H, W) features
        - output: mean (C, 1) and colouring matrix (C, C), float32

    Examples:
        >>> m, col = wct_style_stats(torch.randn(1, 4, 8, 8))
        >>> m.shape, col.shape
        (torch.Size([4, 1]), torch.Size([4, 4]))
    """
    mean, cov = _mean_cov(_flat(style))
    return mean.float(), _matrix_power(cov, 0.5, eps).float()


def wct_affine(content: torch.Tensor, style_mean: torch.Tensor, style_colour: torch.Tensor,
               eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """WCT as an affine map of the content features: ``wct(f) = matrix @ f + shift``.

    ``matrix = E_s D_s^(1/2) E_s^T E_c D_c^(-1/2) E_c^T`` and ``shift = m_s - matrix @ m_c``.
    Being affine, several styles' maps blend (weights, alpha) into one before touching the
    features, which is what the fast stylizer does.

    Shape:
        - content: (1, C, H, W) features
        - output: matrix (C, C), shift (C, 1), float32
    """
    c_mean, c_cov = _mean_cov(_flat(content))
    matrix = style_colour.double().to(content.device) @ _matrix_power(c_cov, -0.5, eps)
    shift = style_mean.to(content.device).double() - matrix @ c_mean
    return matrix.float(), shift.float()


def apply_affine(features: torch.Tensor, matrix: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``matrix @ f + shift`` at every position of (1, C, H, W) features, chunk by chunk; float32."""
    f = _flat(features)
    out = torch.empty(f.shape, dtype=torch.float32, device=f.device)
    for i in range(0, f.shape[1], _columns(f)):
        out[:, i: i + _columns(f)] = torch.addmm(shift, matrix, f[:, i: i + _columns(f)].float())
    return out.reshape(features.shape[1:]).unsqueeze(0)


def wct(content: torch.Tensor, style_mean: torch.Tensor, style_colour: torch.Tensor,
        eps: float = 1e-5) -> torch.Tensor:
    """Whiten ``content`` features and colour them with a style's statistics.

    Args:
        content: (1, C, H, W) features.
        style_mean, style_colour: from :func:`wct_style_stats`.
        eps: ridge, relative to the content covariance's mean eigenvalue.

    Returns:
        (1, C, H, W) float32 features whose channel mean and covariance are the style's
        (up to the ridge); the input is not modified.

    Examples:
        >>> s = torch.randn(1, 3, 16, 16) * torch.tensor([1., 2., 3.]).view(1, 3, 1, 1)
        >>> out = wct(torch.randn(1, 3, 16, 16), *wct_style_stats(s))
        >>> torch.allclose(out[0].reshape(3, -1).std(1), s[0].reshape(3, -1).std(1), rtol=1e-3)
        True
    """
    return apply_affine(content, *wct_affine(content, style_mean, style_colour, eps))


# Converged (to float32 precision) by 30 iterations up to condition 1e7 (measured on random 64 x 64
# spectra); the float32 inverse root is then within 1e-5 of float64's at condition 1e3 (the slim
# model's features), 6e-4 at 1e5, 3e-3 at 1e6. 40 for margin: the matrices are tiny.
NS_ITERATIONS = 40


def newton_schulz_sqrt(cov: torch.Tensor, eps: float = 1e-5, iterations: int = NS_ITERATIONS
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cov + ridge)^(1/2)`` and ``(cov + ridge)^(-1/2)`` by the coupled Newton-Schulz iteration
    (Higham, "Functions of Matrices", 2008, eq. 6.35), with the ridge of :func:`wct_affine`
    (``eps`` times the mean eigenvalue, i.e. the trace / C).

    Matrix products only (no eigendecomposition), so it exports to ONNX and runs in a browser:
    this is WCT in the app export. With ``A = (cov + ridge) / trace``::

        Y_0 = A, Z_0 = I;   T = (3 I - Z_k Y_k) / 2,   Y_{k+1} = Y_k T,   Z_{k+1} = T Z_k
        Y_k -> A^(1/2),   Z_k -> A^(-1/2)

    (converges for eigenvalues in (0, 2); the trace normalisation puts them in (0, 1]). Measured
    on the slim model's relu2_1/relu1_1 features (condition ~1e3): 20 iterations in float32
    match the float64 eigendecomposition to 1e-6 (relative) in the WCT output.

    Shape:
        - cov: (..., C, C), symmetric positive semi-definite
        - output: two (..., C, C)

    Examples:
        >>> a = torch.tensor([[4.0, 1.0], [1.0, 3.0]])
        >>> s, inv = newton_schulz_sqrt(a, eps=0.0)
        >>> torch.allclose(s @ s, a, atol=1e-4), torch.allclose(s @ inv, torch.eye(2), atol=1e-4)
        (True, True)
    """
    c = cov.shape[-1]
    eye = torch.eye(c, dtype=cov.dtype, device=cov.device)
    trace = (cov * eye).sum((-2, -1), keepdim=True)  # no Trace/Diagonal op in ONNX: a masked sum
    a = cov + eps * trace / c * eye
    trace = trace * (1.0 + eps)
    y, z = a / trace, eye.expand_as(a)
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    root = trace.sqrt()
    return y * root, z / root
