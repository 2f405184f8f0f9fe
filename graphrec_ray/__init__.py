"""GraphRecSys: a debiased graph recommender for KuaiRec-style logs.

This package is plain, typed Python over numpy / pyarrow / torch / PyG / FAISS /
scikit-learn. It never imports Ray, MLflow or Redis at module level: those live
at the edges (``jobs/``, ``serve_app/``, ``tune/`` and ``graphrec_ray.serving.cache``).
"""

__version__ = "0.1.0"
