"""Strict typed config loading: unknown keys and wrong types name the key and the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from graphrec_ray.config import config_hash, load_config
from graphrec_ray.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 0.01
    layers: int = 3


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    ks: tuple[int, ...] = (10, 20)
    seed: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_defaults_file_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("name: y\ninner:\n  lr: 1\n")
    cfg = load_config(Outer, f, ["inner.layers=2", "ks=[5]", "seed=7", "mode=b"])
    assert cfg == Outer(name="y", mode="b", ks=(5,), seed=7, inner=Inner(lr=1.0, layers=2))
    assert isinstance(cfg.inner.lr, float)


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("inner:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*inner\.lrr"):
        load_config(Outer, f)


@pytest.mark.parametrize(
    "override, key",
    [("inner.layers=2.5", "inner.layers"), ("name=[1]", "name"), ("mode=c", "mode"), ("ks=[a]", r"ks\[0\]")],
)
def test_wrong_type_names_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(Outer, None, [override])


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ConfigError, match="inner.layers"):
        load_config(Outer, None, ["inner.layers=true"])


def test_missing_file_and_bad_override() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, "/nonexistent.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Outer, None, ["novalue"])


def test_hash_is_stable_and_sensitive() -> None:
    assert config_hash(Outer()) == config_hash(Outer())
    assert config_hash(Outer()) != config_hash(Outer(inner=Inner(layers=4)))
