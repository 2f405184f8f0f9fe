"""How a replica holds model versions (:mod:`graphrec_ray.serving.versions`) and switches them.

Switching versions never mixes them within a request:

* :class:`VersionSlot` holds the current version behind ONE reference; a request reads it once
  (:meth:`VersionSlot.get`) and carries that object (or its id) through every stage; a reload builds the new
  version completely beside the old one and then replaces the reference (a single assignment).
* In the Ray Serve graph each deployment loads only its part of a version; :class:`PartCache` keeps up to
  ``max_loaded`` parts keyed by version id and loads a missing one on demand, so a stage always serves the exact
  version the ingress captured for that request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Generic, TypeVar

from graphrec_ray.errors import DataError
from graphrec_ray.serving.versions import version_id

T = TypeVar("T")


class VersionSlot(Generic[T]):
    """One reference to the current version; reads are a single attribute load, swaps a single store.

    Example::

        >>> slot = VersionSlot("v1")
        >>> v = slot.get()          # a request captures the version once ...
        >>> old = slot.swap("v2")   # ... a reload swaps the reference ...
        >>> v, slot.get()           # ... and the request still holds v1
        ('v1', 'v2')
    """

    def __init__(self, initial: T) -> None:
        self._current = initial
        self._swap_lock = threading.Lock()

    def get(self) -> T:
        return self._current

    def swap(self, new: T) -> T:
        """Make ``new`` current; returns the previous value (reloads are serialised)."""
        with self._swap_lock:
            old, self._current = self._current, new
            return old


class PartCache(Generic[T]):
    """A stage's loaded parts by version id, loading missing ones on demand (thread-safe, LRU-bounded).

    Args:
        loader: ``run_dir -> part``.
        max_loaded: parts kept in memory (>= 2, so old and new coexist during a reload).
    """

    def __init__(self, loader: Callable[[Path], T], max_loaded: int = 2) -> None:
        self._loader = loader
        self._max = max(2, int(max_loaded))
        self._parts: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, vid: str, run_dir: str | Path) -> T:
        """The part of version ``vid`` (from ``run_dir``), loading it if needed.

        Raises:
            DataError: ``run_dir`` no longer holds version ``vid`` (its artifacts were replaced in place).
        """
        part = self._parts.get(vid)
        if part is not None:
            return part
        with self._lock:  # one load at a time; concurrent requests for the same version wait for it
            part = self._parts.get(vid)
            if part is None:
                found = version_id(run_dir)
                if found != vid:
                    raise DataError(f"{run_dir} now holds version {found}, not the requested {vid}")
                part = self._loader(Path(run_dir))
                self._parts[vid] = part
                while len(self._parts) > self._max:
                    self._parts.popitem(last=False)
            else:
                self._parts.move_to_end(vid)
            return part

    def loaded(self) -> list[str]:
        """Version ids currently in memory, oldest first."""
        return list(self._parts)
