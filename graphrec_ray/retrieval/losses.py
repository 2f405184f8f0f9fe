"""Inverse-propensity-weighted BPR loss and the propensity -> weight map.

Exposure bias: a user can only interact with what was shown, and popular items are shown far more often, so a
plain BPR model learns exposure, not preference. Weighting each positive ``(u, i)`` by ``1 / p_i`` (``p_i`` the
item's exposure propensity) makes the expected loss that of a uniformly exposed log (Schnabel et al. 2016; Saito
et al. 2020). Large weights have high variance, so they are clipped at ``clip_max``, once, in
:func:`ips_weights` (before the optional rescale to mean 1); the loss takes the finished weights as they are.

.. math::
    \\mathcal L = -\\frac1B \\sum_{b=1}^{B} w_b\\, \\log\\sigma(s^+_b - s^-_b)
                 + \\frac{\\lambda}{2B} \\sum_{b=1}^{B} \\big(\\|e_{u_b}\\|^2 + \\|e_{i^+_b}\\|^2 + \\|e_{i^-_b}\\|^2\\big)

with ego (layer-0) embeddings in the L2 term, as in the LightGCN paper. PyG's ``BPRLoss`` takes no per-sample
weights, hence this module.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from graphrec_ray.preprocess.propensity import item_propensity


def ips_bpr_loss(pos_scores: Tensor, neg_scores: Tensor, weights: Tensor | None = None,
                 ego_sq: Tensor | None = None, reg: float = 0.0) -> Tensor:
    """IPS-weighted BPR loss plus L2 on the batch's ego embeddings (scalar).

    Args:
        pos_scores: ``(B,)`` scores of the positive items.
        neg_scores: ``(B,)`` scores of the sampled negatives.
        weights: ``(B,)`` non-negative IPS weights of the positives, already clipped (and normalised) by
            :func:`ips_weights`; used as given (None: all ones, plain BPR).
        ego_sq: ``(B,)`` summed squared norms of the user, positive and negative ego embeddings (None: no L2).
        reg: L2 coefficient lambda (default 0).
    """
    log_sig = F.logsigmoid(pos_scores - neg_scores)
    if weights is not None:
        log_sig = weights.to(log_sig.dtype) * log_sig
    loss = -log_sig.mean()
    if ego_sq is not None and reg > 0:
        loss = loss + 0.5 * reg * ego_sq.mean()
    return loss


def ips_weights(propensity: np.ndarray, clip_max: float, normalize_counts: np.ndarray | None = None) -> np.ndarray:
    """Per-item IPS weights ``min(1 / p_i, clip_max)``, float32 ``(I,)``.

    Args:
        propensity: ``(I,)`` exposure propensities in ``(0, 1]``; non-positive values are treated as the smallest
            positive one.
        clip_max: largest weight.
        normalize_counts: optional ``(I,)`` positive counts per item; when given the weights are rescaled so their
            mean over the training positives is 1 (so the loss scale, and its balance with the L2 term, matches
            unweighted BPR). Clipping happens before the rescale, so ``max / min`` is still at most
            ``clip_max * max(p)``.
    """
    p = np.asarray(propensity, dtype=np.float64)
    pos = p[p > 0]
    floor = pos.min() if pos.size else 1.0
    w = np.minimum(1.0 / np.where(p > 0, p, floor), clip_max)
    if normalize_counts is not None:
        c = np.asarray(normalize_counts, dtype=np.float64)
        if c.sum() > 0:
            w = w / (np.dot(w, c) / c.sum())
    return w.astype(np.float32)


def propensity_from_counts(counts: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Popularity-based exposure propensity ``((n_i + 1) / (max n + 1)) ** power`` in ``(0, 1]``, ``(I,)`` float64.

    ``power`` 0.5 is the usual choice for implicit feedback (Yang et al. 2018); 1.0 treats exposure as
    proportional to popularity.
    """
    return item_propensity(counts, smoothing=1.0, power=power, clip_min=0.0)  # ips_weights clips at clip_max
