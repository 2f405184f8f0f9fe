"""Ray Train checkpoint state loads with torch.load(weights_only=True) (issue 13, item 9: checkpoints on shared
storage were loaded with weights_only=False, so a planted pickle would run code on load)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from jobs.ray_train import load_state, save_state


def test_state_round_trips_numpy_tensors_and_plain_values(tmp_path: Path) -> None:
    state = {"best": {"user": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.int64(7)},
             "model": {"w": torch.ones(2)}, "history": [{"loss": 0.5, "phase": "select"}], "trainer": None}
    save_state(state, tmp_path / "state.pt")
    got = load_state(tmp_path / "state.pt")
    np.testing.assert_array_equal(got["best"]["user"], state["best"]["user"])
    assert got["best"]["user"].dtype == np.float32 and got["best"]["step"] == 7
    assert torch.equal(got["model"]["w"], torch.ones(2)) and got["history"] == state["history"]
    assert got["trainer"] is None


class _Exploit:
    def __reduce__(self):  # what a tampered checkpoint would carry
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"x": _Exploit()}, path, pickle_module=pickle)
    with pytest.raises(pickle.UnpicklingError):
        load_state(path)
