"""The BPR step loop shared by the Ray Train worker loop (``jobs/train_retrieval.py``) and in-process fits.

Training is counted in optimiser steps of one **global** batch (``batch_size`` samples over all workers): step
``t`` takes the ``t``-th full batch of the epoch's order (shuffled by ``(seed, epoch)``, the last partial batch
dropped) and worker ``r`` of ``W`` trains on its ``1/W`` slice of it (:func:`graphrec_ray.training.worker_slice`).
So the same data gives the same steps over the same samples whatever the worker count, and DDP's gradient average
over the slices is the gradient of the whole global batch. Every source of randomness is derived from
``(seed, step, rank)`` or ``(seed, epoch)``, and the mined hard-negative table is part of the state, so steps run
after :meth:`BPRTrainer.load_state_dict` are bit-identical to the same steps of an uninterrupted run.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from graphrec_ray.graph.bipartite import NormalizedAdjacency
from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.losses import ips_bpr_loss
from graphrec_ray.retrieval.negatives import HardNegatives, MixedNegatives, UniformNegatives, mine_hard_candidates
from graphrec_ray.training import worker_slice


class BPRTrainer:
    """Trains an embedding model (``LightGCN`` / ``MatrixFactorization``) with (IPS-weighted) BPR.

    Args:
        model: the module; its ``forward(adj, users, pos, neg)`` returns ``(s_pos, s_neg, ego_sq)``.
        adj: normalised adjacency of the training graph (ignored by MF).
        positives: training positives (one BPR triple per row per epoch).
        item_weights: ``(I,)`` IPS weights of positive items, already clipped by ``ips_weights``, or None for
            plain BPR.
        lr: Adam learning rate (default 0.005).
        reg: L2 coefficient on ego embeddings (default 1e-4).
        batch_size: global triples per optimiser step, over all workers (default 4096; clamped to the number of
            positives). Each worker trains on ``batch_size / world_size`` of them.
        hard_ratio, hard_k, hard_start_epoch, hard_refresh_every: hard-negative schedule in epochs (passes over
            the positives; default: off).
        seed: seed of shuffling and sampling (default 0).
        rank, world_size: this worker's slice of every global batch (default 0 of 1).
        forward_module: module called for the forward pass (a DDP wrapper of ``model``), default ``model``.
    """

    def __init__(self, model: nn.Module, adj: NormalizedAdjacency | None, positives: Interactions,
                 item_weights: np.ndarray | None = None, *, lr: float = 0.005, reg: float = 1e-4,
                 batch_size: int = 4096, hard_ratio: float = 0.0, hard_k: int = 100, hard_start_epoch: int = 3,
                 hard_refresh_every: int = 1, seed: int = 0, rank: int = 0, world_size: int = 1,
                 forward_module: nn.Module | None = None) -> None:
        if len(positives) == 0:
            raise ValueError("no training positives")
        self.model, self.adj, self.positives = model, adj, positives
        self.forward_module = forward_module if forward_module is not None else model
        self.pos_matrix = positives.matrix()
        self.device = next(model.parameters()).device
        self.weights = (None if item_weights is None
                        else torch.as_tensor(item_weights, dtype=torch.float32, device=self.device))
        self.reg = reg
        self.global_batch = min(int(batch_size), len(positives))
        self.steps_per_epoch = len(positives) // self.global_batch
        self.slice = worker_slice(self.global_batch, rank, world_size)
        self.hard_ratio, self.hard_k = hard_ratio, hard_k
        self.hard_start_epoch, self.hard_refresh_every = hard_start_epoch, max(1, hard_refresh_every)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.uniform = UniformNegatives(self.pos_matrix)
        self.hard_candidates: np.ndarray | None = None
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.step = 0  # optimiser steps completed
        self.last_samples = 0  # triples this worker trained on in the last run_steps / run_epoch call
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, permutation) cache

    @property
    def epoch(self) -> int:
        """Completed passes over the positives (``step // steps_per_epoch``)."""
        return self.step // self.steps_per_epoch

    # ---- steps ------------------------------------------------------------------------------------------
    def _maybe_mine(self) -> None:
        """At an epoch boundary, (re-)mine hard negatives when the schedule says so."""
        if self.hard_ratio <= 0 or self.epoch < self.hard_start_epoch:
            return
        at_boundary = self.step % self.steps_per_epoch == 0
        due = (self.epoch - self.hard_start_epoch) % self.hard_refresh_every == 0
        if self.hard_candidates is None or (at_boundary and due):
            u, i = self.model.final_embeddings(self.adj)
            self.hard_candidates = mine_hard_candidates(u, i, self.pos_matrix, self.hard_k)

    def sampler(self) -> MixedNegatives:
        """The negative sampler for the current step."""
        hard = None if self.hard_candidates is None else HardNegatives(self.hard_candidates, self.uniform)
        return MixedNegatives(self.uniform, hard, self.hard_ratio if hard is not None else 0.0)

    def _batch(self) -> tuple[np.ndarray, np.ndarray]:
        """This worker's ``(users, pos)`` of the current global batch."""
        epoch, b = divmod(self.step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.positives)))
        rows = self._order[1][b * self.global_batch:(b + 1) * self.global_batch][self.slice]
        return self.positives.user_idx[rows], self.positives.item_idx[rows]

    def run_steps(self, n: int, progress: bool = False) -> float:
        """Run ``n`` optimiser steps; returns the mean loss over them on this worker."""
        self.model.train()
        total, samples = 0.0, 0
        for _ in tqdm(range(n), desc=f"step {self.step}", disable=not progress, leave=False):
            self._maybe_mine()
            users, pos = self._batch()
            neg = self.sampler().sample(users, np.random.default_rng([self.seed, self.step, self.rank]))
            u_t, p_t, n_t = (torch.from_numpy(a).to(self.device) for a in (users, pos, neg))
            s_pos, s_neg, ego = self.forward_module(self.adj, u_t, p_t, n_t)
            w = None if self.weights is None else self.weights[p_t]
            loss = ips_bpr_loss(s_pos, s_neg, w, ego, self.reg)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            samples += int(users.size)
            self.step += 1
        self.last_samples = samples
        return total / max(1, n)

    def run_epoch(self, progress: bool = False) -> float:
        """Run the steps up to the end of the current epoch (``steps_per_epoch`` from an epoch boundary)."""
        return self.run_steps(self.steps_per_epoch - self.step % self.steps_per_epoch, progress)

    # ---- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer, completed steps and the hard-negative table (everything resuming needs)."""
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "step": self.step,
                "hard_candidates": None if self.hard_candidates is None else self.hard_candidates.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        hc = state.get("hard_candidates")
        self.hard_candidates = None if hc is None else np.asarray(hc)

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Final ``(U, d)``, ``(I, d)`` float32 embeddings."""
        self.model.eval()
        u, i = self.model.final_embeddings(self.adj)
        return u.float().cpu().numpy(), i.float().cpu().numpy()


class BPRRecommender(EmbeddingRecommender):
    """An embedding model fitted in-process with :class:`BPRTrainer` (tests, notebooks, the local pipeline).

    Args:
        make_trainer: ``Interactions -> BPRTrainer`` (see ``graphrec_ray.retrieval.build.build_trainer``).
        epochs: epochs to train (default 20).
        validate: optional ``(recommender) -> float`` called after each epoch; with it the best epoch's
            embeddings are kept and training stops after ``patience`` epochs without improvement.
        patience: early-stopping patience (default 3; 0 = never stop early).
    """

    def __init__(self, make_trainer: Callable[[Interactions], BPRTrainer], epochs: int = 20,
                 validate: Callable[["BPRRecommender"], float] | None = None, patience: int = 3) -> None:
        super().__init__(np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32))
        self.make_trainer, self.epochs, self.validate, self.patience = make_trainer, epochs, validate, patience
        self.history: list[dict[str, float]] = []
        self.trainer: BPRTrainer | None = None

    def fit(self, train: Interactions) -> "BPRRecommender":
        """Train for up to ``epochs`` epochs on ``train`` positives."""
        self.trainer = self.make_trainer(train)
        best, bad, best_emb = -np.inf, 0, None
        for _ in range(self.epochs):
            loss = self.trainer.run_epoch()
            self.set_embeddings(*self.trainer.embeddings())
            row = {"epoch": float(self.trainer.epoch), "loss": loss}
            if self.validate is not None:
                v = float(self.validate(self))
                row["val"] = v
                if v > best:
                    best, bad, best_emb = v, 0, (self.user_embeddings, self.item_embeddings)
                else:
                    bad += 1
            self.history.append(row)
            if self.validate is not None and self.patience > 0 and bad >= self.patience:
                break
        if best_emb is not None:
            self.set_embeddings(*best_emb)
        return self
