"""PreprocessConfig: configs/preprocess.yaml loads; bad values and policies are rejected with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec_ray.config import load_config
from graphrec_ray.errors import ConfigError
from graphrec_ray.preprocess.config import PreprocessConfig

REPO = Path(__file__).resolve().parents[3]


def test_shipped_yaml_loads_with_overrides() -> None:
    cfg = load_config(PreprocessConfig, REPO / "configs" / "preprocess.yaml", ["split_by=time", "value_clip=3"])
    assert cfg.split_by == "time" and cfg.value_clip == 3.0 and cfg.exact_duplicates == "drop"


@pytest.mark.parametrize("override, key", [("repeated_views=keep_first", "repeated_views"),
                                           ("train_frac=0.95", "train_frac"),
                                           ("propensity_clip=0", "propensity_clip"),
                                           ("allow_no_timestamp=maybe", "allow_no_timestamp")])
def test_bad_values_are_config_errors(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(PreprocessConfig, None, [override])


def test_function_defaults_match_the_config_defaults() -> None:
    """Bug guarded: process_batch / validate_batch defaults drifting from PreprocessConfig (they once did)."""
    import inspect

    from graphrec_ray.preprocess.stage import batch_kwargs, process_batch
    from graphrec_ray.preprocess.validate import validate_batch

    want = batch_kwargs(PreprocessConfig())
    for fn in (process_batch, validate_batch):
        params = inspect.signature(fn).parameters
        for name, value in want.items():
            if name in params:
                assert params[name].default == value, (fn.__name__, name)
