"""Seeded KuaiRec-layout simulator with exact ground truth (the embedded default data source).

Generative model (all draws from one seed; see :mod:`graphrec_ray.sources.simulator.ground_truth` for the maths):

* **Categories.** ``n_categories`` tags with Zipf-like popularity; each item has a primary tag and,
  sometimes, one or two more (these are ``item_categories.feat``). Each tag has a latent centre in
  ``R^dim``; an item's factor is the weighted mean of its tags' centres plus noise.
* **Users** prefer a few tags (Dirichlet weights, ``pref_concentration``); a user's factor is the
  preference-weighted mean of tag centres plus noise.
* **Watch ratio.** ``log(watch_ratio) ~ Normal(mu[u, i], sigma^2)`` with
  ``mu = mu0 + b_user + b_item + scale * <p_u, q_i> / sqrt(dim)``; ``b_item`` is the item's appeal
  (longer videos get lower ratios); a view is an instant skip (ratio 0) with probability ``p_skip``.
  Hence true ``P(watch_ratio >= 0.5)``, ``E[watch_ratio]`` and ``E[log1p(watch_ratio)]`` are exact.
* **Exposure** in ``big_matrix`` is Bernoulli per (user, item) with probability
  ``min(1, density * activity_u * weight_i)``, where ``log weight_i = exposure_bias * promo_i`` and the
  promotion latent ``promo_i`` correlates only ``appeal_exposure_corr`` with appeal. Raising
  ``exposure_bias`` concentrates exposure on promoted items, so models fit on observed data
  over-rate them; ``exposure_bias = 0`` is uniform exposure. ``exposure_affinity > 0`` adds
  missing-not-at-random exposure (a recommender showing users what they already like), which
  biases click labels in ``big_matrix`` upwards relative to the unbiased ``small_matrix``.
* **small_matrix** is a fully observed block ``small_users x small_items`` (random subsets);
  ``big_matrix`` never exposes those pairs.
* **Time.** Views fall into sessions over 2020-07-05 .. 2020-09-05 (Beijing time) with a daily
  rhythm (evening peak, night trough); within a session views follow each other by play time plus
  a short gap.
* **Quirks** as in the real files, in small proportions: empty time/date/timestamp in
  ``small_matrix`` (``small_nan_time_rate``), exact duplicate rows and repeated (user, video) views in
  ``big_matrix``, injected very large watch ratios (``outlier_rate``; the lognormal also gives natural
  values above 5), zero ``video_duration`` rows (watch_ratio ``inf``), and instant skips (play 0).

**Robustness presets** (issue 10; demo size, each with ground truth): ``bursty`` (each user active in a
random ``active_fraction = 0.2`` of the window), ``popularity_strong`` / ``popularity_weak``
(``exposure_bias`` 2.5 / 0.5), ``rating_like`` (watch ratios floored to :data:`RATING_LEVELS`; clicks and
``P(click)`` unchanged, ``E[watch_ratio]`` of the truth is the latent unfloored one), ``sparse`` (density
0.012, ``activity_std`` 1.0). A model setting left ``None`` takes the preset's value
(:data:`PRESET_MODELS`), else the demo's; a value given in the config wins.

Side tables follow from the model: ``item_categories`` from the tags, ``item_daily_features``
counters drawn from each item's true exposure and engagement rates (``collect_*`` empty before
2020-07-18 as in the real file, some empty ``video_duration`` / ``video_tag_name``),
``user_features`` from activity and preferences (``onehot_feat1/2`` encode the top tags; some
``onehot`` fields empty), ``social_network`` linking users with similar tastes.

Writes the six CSVs in the published format plus ``ground_truth/`` (``model.npz``, ``params.json``,
``summary.json``, ``config.json``). Work is chunked over users (``chunk_users``) with vectorised
numpy and pyarrow formatting, so memory stays bounded at the ``full`` preset.

Example::

    >>> from graphrec_ray.sources.simulator import SimulatorConfig, simulate
    >>> summary = simulate(SimulatorConfig(preset="tiny", seed=1), "/tmp/sim", progress=False)  # doctest: +SKIP
    >>> summary["rows"]["small_matrix.csv"]                                                       # doctest: +SKIP
    300
"""

from graphrec_ray.sources.simulator.model import CATEGORY_NAMES
from graphrec_ray.sources.simulator.presets import (PRESET_MODELS, PRESETS, RATING_LEVELS, ROBUSTNESS_PRESETS,
                                                    SimulatorConfig, Sizes, resolve_model, resolve_sizes)
from graphrec_ray.sources.simulator.writer import simulate

__all__ = ["SimulatorConfig", "PRESETS", "PRESET_MODELS", "ROBUSTNESS_PRESETS", "RATING_LEVELS", "Sizes",
           "resolve_sizes", "resolve_model", "simulate", "CATEGORY_NAMES"]
