"""Training and prediction steps of the ranker, framework-free (the Ray Train loop in
``jobs/train_ranker.py`` calls these on each worker; tests call them directly).

Three models train side by side on the same batches: ``"mmoe"`` (both tasks), and, as
baselines with the same features and half the MMoE's parameter budget each, ``"click"`` and
``"value"`` single-task MLPs. Features for a batch are built once and shared by all three.

Loss of the MMoE: ``click_weight * BCE(logit, label_click) + value_weight * MSE(value, label_value)``.
"""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import torch
from torch import nn

from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.data import Events
from graphrec_ray.ranking.features import FeatureBuilder
from graphrec_ray.ranking.layers import InputNorm, n_params
from graphrec_ray.ranking.mmoe import CLICK, VALUE, MMoE
from graphrec_ray.ranking.single_task import SingleTaskMLP, budget_hidden

MODEL_NAMES = ("mmoe", "click", "value")


def build_models(cfg: RankingConfig, in_dim: int, n_users: int = 0, n_items: int = 0,
                 seed: int | None = None) -> dict[str, nn.Module]:
    """The MMoE and (when ``cfg.train_baselines``) the two budget-matched single-task MLPs, seeded.

    ``n_users``/``n_items`` size the id embeddings (``cfg.id_embedding_dim``; ignored when it is 0).
    """
    torch.manual_seed(cfg.seed if seed is None else seed)
    k = cfg.id_embedding_dim if n_users > 0 and n_items > 0 else 0
    mmoe = MMoE(in_dim, cfg.n_experts, cfg.expert_hidden, cfg.tower_hidden, 2, cfg.dropout, n_users, n_items, k)
    models: dict[str, nn.Module] = {"mmoe": mmoe}
    if cfg.train_baselines:
        dense = n_params(mmoe) - n_params(mmoe.ids)
        hidden = budget_hidden(in_dim + 2 * k, dense // 2)
        models["click"] = SingleTaskMLP(in_dim, hidden, cfg.dropout, n_users, n_items, k)
        models["value"] = SingleTaskMLP(in_dim, hidden, cfg.dropout, n_users, n_items, k)
    return models


def model_hparams(cfg: RankingConfig, models: dict[str, nn.Module]) -> dict[str, dict]:
    """Constructor arguments of each model (saved beside the weights so serving can rebuild them)."""
    out: dict[str, dict] = {}
    for name, m in models.items():
        m = unwrap(m)
        ids = {"n_users": m.ids.user.num_embeddings, "n_items": m.ids.item.num_embeddings, "id_dim": m.ids.dim}
        if isinstance(m, MMoE):
            out[name] = {"in_dim": m.in_dim, "n_experts": cfg.n_experts, "expert_hidden": list(cfg.expert_hidden),
                         "tower_hidden": list(cfg.tower_hidden), "n_tasks": 2, **ids}
        else:
            out[name] = {"in_dim": m.in_dim, "hidden": list(m.hidden), **ids}
    return out


def make_model(name: str, hparams: dict) -> nn.Module:
    """Rebuild a model from :func:`model_hparams` output (dropout off: inference)."""
    ids = (hparams.get("n_users", 0), hparams.get("n_items", 0), hparams.get("id_dim", 0))
    if name == "mmoe":
        return MMoE(hparams["in_dim"], hparams["n_experts"], tuple(hparams["expert_hidden"]),
                    tuple(hparams["tower_hidden"]), hparams["n_tasks"], 0.0, *ids)
    return SingleTaskMLP(hparams["in_dim"], tuple(hparams["hidden"]), 0.0, *ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (or the module itself)."""
    return model.module if hasattr(model, "module") else model


def fit_input_norms(models: dict[str, nn.Module], builder: FeatureBuilder, events: Events, n_rows: int,
                    seed: int) -> None:
    """Set every model's :class:`InputNorm` from ``n_rows`` training rows drawn with ``seed``."""
    rows = np.sort(np.random.default_rng(seed).choice(len(events), min(n_rows, len(events)), replace=False))
    x = torch.from_numpy(events.features(builder, rows))
    for m in models.values():
        norm = unwrap(m).norm
        assert isinstance(norm, InputNorm)
        norm.fit(x)


def epoch_rows(n: int, max_rows: int = 0) -> int:
    """Training rows one epoch passes over: all ``n``, or at most ``max_rows`` when it is > 0."""
    return n if max_rows <= 0 else min(n, max_rows)


def iterate_batches(n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                    max_rows: int = 0) -> Iterator[np.ndarray]:
    """Row indices of this rank's batches for one epoch: a seeded permutation cut into equal shards.

    Every rank gets the same number of batches (DDP needs it); up to ``world_size - 1`` rows are dropped.
    ``max_rows > 0`` keeps the permutation's first ``max_rows`` rows: a seeded sample without replacement, a
    different one each epoch (the seed changes), so successive epochs cover fresh rows before any repeats.
    """
    perm = np.random.default_rng(seed).permutation(n)[:epoch_rows(n, max_rows)]
    m = perm.size
    perm = perm[: m - m % world_size][rank::world_size]
    for s in range(0, perm.size, batch_size):
        yield np.sort(perm[s: s + batch_size])


def _losses(name: str, out: torch.Tensor, yc: torch.Tensor, yv: torch.Tensor, cfg: RankingConfig) -> torch.Tensor:
    bce = nn.functional.binary_cross_entropy_with_logits
    mse = nn.functional.mse_loss
    if name == "mmoe":
        return cfg.click_weight * bce(out[:, CLICK], yc) + cfg.value_weight * mse(out[:, VALUE], yv)
    if name == "click":
        return bce(out, yc)
    return mse(out, yv)


def train_epoch(models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], builder: FeatureBuilder,
                events: Events, cfg: RankingConfig, epoch: int, active: set[str] | None = None, rank: int = 0,
                world_size: int = 1, progress: bool = False) -> dict[str, float]:
    """One pass over this rank's shard; steps the models in ``active`` (default all), in ``models`` order.

    Returns mean training loss per model (``loss/<name>``), ``samples`` (this rank) and ``seconds``.
    """
    # Step in the dict's order, never a set's: set order of strings differs between processes (hash
    # randomisation), and DDP ranks stepping models in different orders mismatch their all-reduces.
    order = [n for n in models if active is None or n in active]
    for name in models:
        models[name].train(name in order)
    sums = {n: 0.0 for n in order}
    n_batches, n_samples, t0 = 0, 0, time.perf_counter()
    batches = iterate_batches(len(events), cfg.batch_size, cfg.seed * 1000 + epoch, rank, world_size,
                              cfg.epoch_max_rows)
    if progress:
        from tqdm import tqdm

        total = -(-(epoch_rows(len(events), cfg.epoch_max_rows) // world_size) // cfg.batch_size)
        batches = tqdm(batches, total=total, desc=f"epoch {epoch}", unit="batch", leave=False)
    for rows in batches:
        e = events.take(rows)
        x = torch.from_numpy(e.features(builder))
        u, i = torch.from_numpy(e.user_idx.astype(np.int64)), torch.from_numpy(e.item_idx.astype(np.int64))
        yc, yv = torch.from_numpy(e.label_click), torch.from_numpy(e.label_value)
        for name in order:
            optimizers[name].zero_grad(set_to_none=True)
            loss = _losses(name, models[name](x, u, i), yc, yv, cfg)
            loss.backward()
            optimizers[name].step()
            sums[name] += float(loss.detach())
        n_batches += 1
        n_samples += len(rows)
    out = {f"loss/{n}": s / max(n_batches, 1) for n, s in sums.items()}
    out.update(samples=float(n_samples), seconds=time.perf_counter() - t0)
    return out


@torch.inference_mode()
def predict(models: dict[str, nn.Module], builder: FeatureBuilder, events: Events,
            batch_size: int = 16384) -> dict[str, np.ndarray]:
    """Raw outputs on ``events``: ``mmoe_logit``, ``mmoe_value`` and, if present, ``click_logit``, ``value_value``.

    Each ``(N,)`` float32 (logits uncalibrated).
    """
    for m in models.values():
        m.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for s in range(0, len(events), batch_size):
        sl = slice(s, s + batch_size)
        x = torch.from_numpy(events.features(builder, sl))
        u = torch.from_numpy(events.user_idx[sl].astype(np.int64))
        i = torch.from_numpy(events.item_idx[sl].astype(np.int64))
        for name, m in models.items():
            out = unwrap(m)(x, u, i)
            if name == "mmoe":
                parts.setdefault("mmoe_logit", []).append(out[:, CLICK].numpy())
                parts.setdefault("mmoe_value", []).append(out[:, VALUE].numpy())
            elif name == "click":
                parts.setdefault("click_logit", []).append(out.numpy())
            else:
                parts.setdefault("value_value", []).append(out.numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}


def validation_scores(pred: dict[str, np.ndarray], events: Events, cfg: RankingConfig) -> dict[str, float]:
    """Validation loss per model (lower is better) plus click AUC: ``val_loss/<name>``, ``val_auc/<name>``."""
    from sklearn.metrics import roc_auc_score

    yc = torch.from_numpy(events.label_click)
    yv = torch.from_numpy(events.label_value)
    out: dict[str, float] = {}
    two_classes = np.unique(events.label_click).size == 2
    if "mmoe_logit" in pred:
        both = torch.stack([torch.from_numpy(pred["mmoe_logit"]), torch.from_numpy(pred["mmoe_value"])], dim=1)
        out["val_loss/mmoe"] = float(_losses("mmoe", both, yc, yv, cfg))
        if two_classes:
            out["val_auc/mmoe"] = float(roc_auc_score(events.label_click, pred["mmoe_logit"]))
    if "click_logit" in pred:
        out["val_loss/click"] = float(_losses("click", torch.from_numpy(pred["click_logit"]), yc, yv, cfg))
        if two_classes:
            out["val_auc/click"] = float(roc_auc_score(events.label_click, pred["click_logit"]))
    if "value_value" in pred:
        out["val_loss/value"] = float(_losses("value", torch.from_numpy(pred["value_value"]), yc, yv, cfg))
    return out
