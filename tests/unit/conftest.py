"""Unit-test fixtures: one intra-op torch thread.

The tests use small tensors; on a shared 2-core machine intra-op thread pools spin on tiny sparse products
(measured: 0.01 ms with 1 thread vs ~19 ms with 2 under load), so every unit test runs single-threaded.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
