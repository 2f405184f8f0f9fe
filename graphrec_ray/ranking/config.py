"""``RankingConfig``: the ranking stage's one typed config (``configs/ranking.yaml`` lists changes only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from graphrec_ray.training import TrainerConfig


@dataclass(frozen=True)
class RankingConfig:
    """MMoE ranker, single-task baselines, calibration and training schedule."""

    n_experts: int = 4  # shared experts; Ma et al. use a handful, more buys little on ~200 features
    expert_hidden: tuple[int, ...] = (64, 32)  # ReLU widths of each expert; keeps 500-candidate scoring ~1 ms
    tower_hidden: tuple[int, ...] = (16,)  # ReLU widths of each task tower before its scalar output
    id_embedding_dim: int = 16  # learned user/item id embeddings per id (0 = off): per-user/item effects from labels
    dropout: float = 0.0  # dropout in experts/towers; millions of samples, few epochs: not needed
    click_weight: float = 1.0  # weight of the click BCE in the multi-task loss
    value_weight: float = 1.0  # weight of the value MSE (log1p(watch_ratio) is O(1), same scale as BCE)
    train_baselines: bool = True  # also train the single-task click and value MLPs (same budget) for comparison
    # ...but only up to this many training rows (0 = no limit): they are reported, never served, and cost as much
    # training time as the MMoE (cProfile at full/4); above ~1M rows (full/2 and full) the MMoE trains alone.
    baselines_max_rows: int = 1_000_000
    lr: float = 2e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam L2; early stopping regularises instead
    batch_size: int = 4096  # per-worker batch; large batches keep the CPU busy with few Python steps
    epochs: int = 4  # maximum epochs (early stopping may end sooner)
    max_train_rows: int = 0  # use only the first N training rows (0 = all), for quick runs
    # Rows per epoch at most (0 = all): each epoch a fresh seeded sample without replacement, a bound on training
    # time for logs larger than full KuaiRec. Off by default: it costs AUC where it binds (full/2, 2M of 2.4M rows:
    # outputs/ranker_scale.json, paired "cap2M_minus_all"), and the MMoE alone fits the time budget at full scale.
    epoch_max_rows: int = 0
    val_max_rows: int = 200_000  # validation rows scored each epoch (a seeded sample; all when fewer)
    norm_sample_rows: int = 100_000  # training rows used to set the input standardisation
    session_gap_s: float = 1800.0  # a gap longer than 30 min starts a new session
    neg_sample_rate: float = 1.0  # fraction of training negatives kept (CTR-style down-sampling); 1.0 = all
    calibration: Literal["auto", "platt", "isotonic", "downsampling"] = "auto"  # auto: best validation log-loss
    ece_bins: int = 15  # bins for ECE and the reliability diagram
    ci_n_boot: int = 1000  # bootstrap-over-users replicates behind every metric's 95% interval (ends stable to ~1%)
    torch_threads: int = 0  # intra-op threads per worker (0 = leave torch's default)
    seed: int = 0  # model init, batch order and validation sample
    data_dir: Path | None = None  # raw data (side tables, ground truth); None = the one in preprocess/manifest.json
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # Ray Train workers, checkpoints, early stopping

    def __post_init__(self) -> None:
        if self.n_experts < 1 or not self.expert_hidden:
            raise ValueError("n_experts must be >= 1 and expert_hidden non-empty")
        if self.baselines_max_rows < 0:
            raise ValueError(f"baselines_max_rows must be >= 0 (0 = no limit), got {self.baselines_max_rows}")
        if self.epoch_max_rows < 0:
            raise ValueError(f"epoch_max_rows must be >= 0 (0 = all rows), got {self.epoch_max_rows}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be >= 1")
        if self.ci_n_boot < 10:
            raise ValueError(f"ci_n_boot must be >= 10, got {self.ci_n_boot}")
        if not 0.0 < self.neg_sample_rate <= 1.0:
            raise ValueError(f"neg_sample_rate must be in (0, 1], got {self.neg_sample_rate}")
        if self.click_weight < 0 or self.value_weight < 0 or self.click_weight + self.value_weight == 0:
            raise ValueError("loss weights must be >= 0 and not both 0")
