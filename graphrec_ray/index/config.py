"""Configuration of the FAISS item index (``configs/index.yaml`` lists only changes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexConfig:
    """How ``jobs/build_index.py`` builds ``run_dir/index/items.faiss``.

    The default follows ``benchmarks/faiss_index.py`` (``outputs/faiss_benchmark.csv``): exact search is the
    fastest index at recall 1.0 at KuaiRec's ~10.7k items; compressed indexes only pay off at larger catalogues.
    """

    factory: str = "Flat"  # FAISS factory string: "Flat", "IVF256,PQ16", "IVF256,PQ16,RFlat", "HNSW32", ...
    nprobe: int = 16  # IVF inverted lists visited per query (ignored by Flat/HNSW); recall vs speed knob
    ef_search: int = 128  # HNSW search breadth (ignored by non-HNSW indexes); recall vs speed knob
    refine_k_factor: float = 4.0  # ",RFlat" re-ranks k * refine_k_factor compressed hits exactly
    train_sample: int = 100_000  # at most this many item vectors train IVF/PQ (bounded training time)
    seed: int = 0  # seed of the training-sample draw
    verify_recall_k: int = 100  # build job reports recall@k of the built index against exact search
    verify_queries: int = 500  # user queries used for that recall check (0 = skip)
