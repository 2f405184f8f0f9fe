"""One local Ray cluster for the whole integration session (start/stop costs seconds).

Tests request the ``ray_cluster`` fixture. Logical CPUs are set to 4 on the
2-core machine so a 2-worker Ray Train run (plus its controller) and a
3-deployment Serve graph with fractional CPUs can be scheduled; work still runs
on the 2 physical cores.
"""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    from jobs.common import apply_ray_env_defaults

    if not ray.is_initialized():
        apply_ray_env_defaults()
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)  # never join one
    yield
    try:
        from ray import serve

        serve.shutdown()
    except Exception:  # noqa: BLE001 - best effort on teardown
        pass
    ray.shutdown()
