"""make_labels: click at the threshold, clipped log1p value."""

from __future__ import annotations

import numpy as np

from graphrec_ray.preprocess.labels import make_labels


def test_click_and_value_known_answers() -> None:
    wr = np.array([0.0, 0.49, 0.5, 1.0, 5.0, 10.0, 600.0])
    click, value = make_labels(wr)
    assert click.dtype == np.int8 and value.dtype == np.float32
    assert click.tolist() == [0, 0, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(value, np.log1p([0.0, 0.49, 0.5, 1.0, 5.0, 5.0, 5.0]), rtol=1e-6)


def test_threshold_and_clip_are_configurable() -> None:
    click, value = make_labels(np.array([0.7, 0.8, 3.0]), click_threshold=0.8, value_clip=2.0)
    assert click.tolist() == [0, 1, 1]
    np.testing.assert_allclose(value, np.log1p([0.7, 0.8, 2.0]), rtol=1e-6)
