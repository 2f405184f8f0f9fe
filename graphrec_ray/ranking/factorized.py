"""Scoring one user's candidates with the MMoE's first layer factorised by feature side.

Every input of the MMoE first goes through one linear map ``L`` (the experts' first layer and the gates,
:meth:`MMoE.first_layer`) applied to the normalised features and the id embeddings. Input normalisation is
affine, so ``L`` splits exactly into a sum over the feature sides of :mod:`graphrec_ray.ranking.features`::

    L(x) = c + W_user . x_user + W_item . x_item + W_pair . x_pair + W_uid . e_user + W_iid . e_item

For one request the user side (user embedding and profile, time and session context) is the same for all
``K`` candidates, and the item side (item embedding, duration, categories, item id embedding) is fixed within a
model version. So the item side is computed once per version into a table ``(n_items, O)``; a request computes
its user side once (one row), and only the narrow pair side (item stats as of the request's day and the
``user . item`` score, 11 of the 213 columns) per candidate. The rest of the network runs as usual
(:meth:`MMoE.from_first`).

The first layer is about 90% of the model's arithmetic, and building the full ``(K, 213)`` feature matrix
took a third of the scoring time. ``benchmarks/ranker_throughput.py`` (KuaiRec-size tables, one thread):
500 candidates in 1.35 ms p50 against 2.83 ms for the full matrix through the model. The result equals
``model(builder.build(...))`` up to float32 rounding (tested).
"""

from __future__ import annotations

import numpy as np
import torch

from graphrec_ray.ranking.features import ITEM_SIDE, PAIR_SIDE, USER_SIDE, FeatureBuilder
from graphrec_ray.ranking.mmoe import MMoE


def side_columns(builder: FeatureBuilder, side: tuple[str, ...]) -> np.ndarray:
    """Column indices of the feature blocks named in ``side``."""
    return np.concatenate([np.arange(builder.dim)[builder.spec.block(name)] for name in side])


class FactorizedScorer:
    """Raw MMoE outputs for one user's candidates, with the item side precomputed.

    Args:
        model: the trained MMoE (eval mode; weights are read once, later changes are not seen).
        builder: the feature builder the model was trained with.
        chunk: items per block while precomputing the item table (bounds the temporary memory).
    """

    def __init__(self, model: MMoE, builder: FeatureBuilder, chunk: int = 4096) -> None:
        names = [n for n, _, _ in builder.spec.blocks]
        if sorted(names) != sorted(USER_SIDE + ITEM_SIDE + PAIR_SIDE):
            raise ValueError(f"feature blocks {names} are not exactly the user, item and pair sides")
        self.model, self.builder = model, builder
        d, k = builder.dim, model.ids.dim
        with torch.no_grad():
            weight, bias = model.first_layer()
            w_x = weight[:, :d] * model.norm.inv_std  # normalisation folded into the weights
            self.const = bias - w_x @ model.norm.mean  # (O,)
            self.w_x = w_x.contiguous()
            self.w_user_id = weight[:, d:d + k].contiguous()
            pair_cols = torch.from_numpy(side_columns(builder, PAIR_SIDE))  # in pair_side's column order
            self.w_pair_t = w_x[:, pair_cols].T.contiguous()  # (P, O)
            n_items = builder.n_ids[1]
            self.item_pre = torch.empty(n_items, weight.shape[0])
            for start in range(0, n_items, chunk):
                idx = np.arange(start, min(start + chunk, n_items))
                x = np.zeros((idx.size, d), dtype=np.float32)
                builder.fill_item_side(x, idx)
                pre = torch.from_numpy(x) @ w_x.T
                if k:
                    pre += model.ids.item(torch.from_numpy(idx)) @ weight[:, d + k:].T
                self.item_pre[start:start + idx.size] = pre
        self.n_expert_pre = model.experts.n_experts * model.experts.hidden[0]

    @torch.inference_mode()
    def outputs(self, user_idx: int, item_idx: np.ndarray, timestamp: float, position: float = 0.0,
                since_last: float = -1.0, user_emb: np.ndarray | None = None) -> np.ndarray:
        """``(K, T)`` model outputs (click logit, value) for ``item_idx`` ``(K,)`` of one user at one moment.

        Arguments as in :meth:`FeatureBuilder.build` with a single user; ``user_emb`` ``(d,)`` replaces the
        stored user embedding (user side and the ``user . item`` score).
        """
        b = self.builder
        items = np.asarray(item_idx, dtype=np.int64).reshape(-1)
        users = np.array([user_idx], dtype=np.int64)
        ts = np.array([timestamp], dtype=np.float64)
        ue = b.user_embedding(users, user_emb)
        x_user = np.zeros((1, b.dim), dtype=np.float32)
        b.fill_user_side(x_user, users, ts, np.asarray(position), np.asarray(since_last), ue)
        user_pre = self.const + torch.from_numpy(x_user[0]) @ self.w_x.T
        if self.w_user_id.shape[1]:
            user_pre += self.w_user_id @ self.model.ids.user.weight[int(user_idx)]
        x_pair = b.pair_side(items, np.broadcast_to(ts, items.shape), np.broadcast_to(ue, (items.size, ue.shape[1])))
        pre = torch.index_select(self.item_pre, 0, torch.from_numpy(items))
        pre.add_(user_pre).addmm_(torch.from_numpy(x_pair), self.w_pair_t)
        out, _ = self.model.from_first(pre[:, :self.n_expert_pre], pre[:, self.n_expert_pre:])
        return out.numpy()
