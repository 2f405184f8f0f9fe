"""Cluster-wide model version: one pointer every replica follows, switched in two phases (load, then swap).

``POST /reload`` on any replica calls :meth:`VersionBoard.propose`. The board publishes the proposal; every
replica of the application (the graph's stages too) follows the board through :class:`Follower`, loads the new
version beside the one it serves (*prepare*) and acknowledges. Only when every live replica has loaded it does
the board commit: replicas swap their one version reference (a single assignment), and ``propose`` returns once
they all report the new version. A replica that fails to load it aborts the proposal and everyone keeps serving
the old version. So a reload reaches every replica, no request fails for it and no response mixes versions (a
request captures its version once; the graph's stages keep the previous version loaded beside the new one).

A replica that starts later (restart, autoscaling) joins the board and loads its *current* version, not the run
directory the application was built with.

:class:`VersionBoard` is plain asyncio (unit-tested without Ray); :func:`board_handle` runs it as a named,
detached Ray actor (zero CPUs) per application deploy, which exits by itself once no replica has followed it for
``idle_exit_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Protocol

logger = logging.getLogger("ray.serve")

NAMESPACE = "graphrec"  # Ray namespace of the boards (one detached actor per application deploy)


CORRUPT = "model files do not match their manifest checksums (corrupt or truncated)"


def failure_reason(exc: BaseException) -> str:
    """What a client may read about a failed load: :data:`CORRUPT` for a checksum mismatch, else the exception's
    class name (never its message, which names server paths)."""
    from graphrec_ray.serving.versions import CorruptArtifact

    return CORRUPT if isinstance(exc, CorruptArtifact) else type(exc).__name__


class VersionBoard:
    """The current version of one application and at most one proposal in flight.

    State sent to followers: ``{"seq", "run_dir", "version", "proposal", "pending"}`` where ``seq`` counts
    commits, ``proposal`` counts proposals and ``pending`` is ``{"run_dir", "version"}`` while one is open.

    Args:
        run_dir: the run directory the application was built with (version 0).
        version: its version id (:func:`graphrec_ray.serving.versions.version_id`).
        member_ttl_s: a replica that has not called the board for this long (and is not waiting in
            :meth:`watch`) counts as gone; default 30 s, three missed 10 s watches.
        clock: monotonic clock (tests pass a fake one).
    """

    def __init__(self, run_dir: str, version: str, member_ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seq = 0
        self.current = {"run_dir": run_dir, "version": version}
        self.proposal = 0
        self.pending: dict[str, str] | None = None
        self.member_ttl_s = member_ttl_s
        self._clock = clock
        self._last_seen: dict[str, float] = {}
        self._watching: dict[str, int] = {}
        self._seq_of: dict[str, int] = {}  # the commit each member last reported serving
        self._acks: dict[str, bool] = {}
        self._errors: list[str] = []
        self._changed: asyncio.Event | None = None
        self._propose_lock: asyncio.Lock | None = None
        self._last_activity = clock()

    # ------------------------------------------------------------------ followers

    def state(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.current, "proposal": self.proposal,
                "pending": dict(self.pending) if self.pending else None}

    def _touch(self, member: str) -> None:
        self._last_seen[member] = self._last_activity = self._clock()

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        self._event().set()
        self._changed = asyncio.Event()

    async def join(self, member: str) -> dict[str, Any]:
        """Register ``member``; returns the state (a new replica loads ``state["version"]``)."""
        self._touch(member)
        return self.state()

    async def watch(self, member: str, seq: int, proposal: int, timeout_s: float = 10.0) -> dict[str, Any]:
        """Long poll: return the state as soon as it differs from what ``member`` has handled (or on timeout).

        Args:
            seq: the commit ``member`` serves now (reported, so :meth:`propose` knows when all have switched).
            proposal: the last proposal ``member`` has prepared (or seen aborted).
        """
        self._touch(member)
        self._seq_of[member] = seq
        self._watching[member] = self._watching.get(member, 0) + 1
        try:
            if seq == self.seq and (self.pending is None or proposal == self.proposal):
                ev = self._event()
                try:
                    await asyncio.wait_for(ev.wait(), timeout_s)
                except asyncio.TimeoutError:
                    pass
            return self.state()
        finally:
            self._watching[member] -= 1
            self._touch(member)

    async def ack(self, member: str, proposal: int, ok: bool, error: str = "") -> None:
        """``member`` has loaded (``ok``) or failed to load the pending version of ``proposal``."""
        self._touch(member)
        if proposal == self.proposal and self.pending is not None:
            self._acks[member] = ok
            if not ok:
                self._errors.append(error)
            self._notify()

    async def leave(self, member: str) -> None:
        """``member`` shuts down: stop waiting for it."""
        for d in (self._last_seen, self._watching, self._seq_of, self._acks):
            d.pop(member, None)
        self._notify()

    def live(self) -> set[str]:
        """Members waiting in :meth:`watch` now or seen within ``member_ttl_s``."""
        now = self._clock()
        return {m for m, t in self._last_seen.items()
                if self._watching.get(m, 0) > 0 or now - t <= self.member_ttl_s}

    def idle_for(self) -> float:
        """Seconds since any member called the board (0 while one is watching)."""
        if any(n > 0 for n in self._watching.values()):
            return 0.0
        return self._clock() - self._last_activity

    # ------------------------------------------------------------------ reload

    async def propose(self, run_dir: str, version: str, timeout_s: float = 120.0,
                      switch_timeout_s: float = 15.0) -> dict[str, Any]:
        """Switch every live member to ``version`` (two phases); one proposal at a time.

        Returns:
            ``{"ok": True, "previous_version", "model_version", "replicas"}`` once every live member loaded it
            and (within ``switch_timeout_s``) reported serving it, or ``{"ok": False, "reason": "load_failed" |
            "timeout", "failed": n, "previous_version", "errors"}`` with the old version still current everywhere
            (``errors``: the members' :func:`failure_reason` strings).
        """
        if self._propose_lock is None:
            self._propose_lock = asyncio.Lock()
        async with self._propose_lock:
            previous = self.current["version"]
            if version == previous:
                return {"ok": True, "previous_version": previous, "model_version": version,
                        "replicas": len(self.live())}
            self.proposal += 1
            self.pending = {"run_dir": run_dir, "version": version}
            self._acks, self._errors = {}, []
            self._notify()
            deadline = self._clock() + timeout_s
            while True:
                live = self.live()
                if any(not ok for ok in self._acks.values()):
                    return self._abort("load_failed", previous)
                if live and all(self._acks.get(m) for m in live):
                    break
                if self._clock() >= deadline:
                    return self._abort("timeout", previous)
                await self._wait(min(1.0, max(0.01, deadline - self._clock())))
            self.seq += 1
            self.current, self.pending = dict(self.pending), None
            self._notify()
            switch_deadline = self._clock() + switch_timeout_s
            while self._clock() < switch_deadline and any(self._seq_of.get(m, -1) < self.seq for m in self.live()):
                await self._wait(0.05)
            return {"ok": True, "previous_version": previous, "model_version": version,
                    "replicas": len(self.live())}

    def _abort(self, reason: str, previous: str) -> dict[str, Any]:
        failed = sum(not ok for ok in self._acks.values())
        self.pending = None
        self._notify()
        return {"ok": False, "reason": reason, "failed": failed, "previous_version": previous,
                "errors": sorted(set(self._errors))}

    async def _wait(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._event().wait(), timeout_s)
        except asyncio.TimeoutError:
            pass


class Board(Protocol):
    """What followers and ``/reload`` call: a :class:`VersionBoard` in-process, or its Ray actor."""

    async def join(self, member: str) -> dict[str, Any]: ...
    async def watch(self, member: str, seq: int, proposal: int, timeout_s: float = 10.0) -> dict[str, Any]: ...
    async def ack(self, member: str, proposal: int, ok: bool, error: str = "") -> None: ...
    async def leave(self, member: str) -> None: ...
    async def propose(self, run_dir: str, version: str, timeout_s: float = 120.0) -> dict[str, Any]: ...


class Follower:
    """A replica's side of the board: prepare (load beside) on a proposal, commit (swap) on a new seq.

    Args:
        board: the application's board.
        prepare: ``async (run_dir, version) -> None``; loads the version beside the current one (raises on failure).
        commit: ``async (run_dir, version) -> None``; makes it current (loads first if it was never prepared).
        member: this replica's id (default: a fresh uuid).
    """

    def __init__(self, board: Board, prepare: Callable[[str, str], Awaitable[None]],
                 commit: Callable[[str, str], Awaitable[None]], member: str | None = None) -> None:
        self.board, self._prepare, self._commit = board, prepare, commit
        self.member = member or uuid.uuid4().hex
        self.seq = -1
        self.proposal = 0
        self._task: asyncio.Task | None = None

    async def join(self) -> dict[str, Any]:
        """Register and return the board's state (the caller loads ``state["version"]`` before serving)."""
        state = await self.board.join(self.member)
        self.seq, self.proposal = state["seq"], state["proposal"]
        return state

    async def step(self, timeout_s: float = 10.0) -> None:
        """One watch round: handle whatever changed."""
        state = await self.board.watch(self.member, self.seq, self.proposal, timeout_s)
        pending = state["pending"]
        if pending is not None and state["proposal"] != self.proposal:
            self.proposal = state["proposal"]
            try:
                await self._prepare(pending["run_dir"], pending["version"])
            except Exception as exc:  # noqa: BLE001 - the board aborts; this replica keeps its version
                logger.exception("loading version %s failed", pending["version"])
                await self.board.ack(self.member, self.proposal, False, failure_reason(exc))
            else:
                await self.board.ack(self.member, self.proposal, True)
        elif pending is None:
            self.proposal = state["proposal"]
        if state["seq"] != self.seq:
            await self._commit(state["run_dir"], state["version"])
            self.seq = state["seq"]

    def start(self, timeout_s: float = 10.0) -> None:
        """Follow the board in a background task of the running loop until :meth:`stop`."""
        async def loop() -> None:
            while True:
                try:
                    await self.step(timeout_s)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - board unreachable for a moment: keep serving, retry
                    logger.warning("version board unreachable; retrying", exc_info=True)
                    await asyncio.sleep(1.0)

        self._task = asyncio.get_running_loop().create_task(loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def follow(board: Board, prepare: Callable[[str, str], Awaitable[None]],
                 commit: Callable[[str, str], Awaitable[None]], current_version: str) -> Follower:
    """Join ``board``, switch to its current version if it differs from ``current_version`` (a replica started
    after a reload), then follow it in the background; returns the running :class:`Follower`."""
    follower = Follower(board, prepare, commit)
    state = await follower.join()
    if state["version"] != current_version:
        await commit(state["run_dir"], state["version"])
    follower.start()
    return follower


# ------------------------------------------------------------------------------------------------ Ray


class _RayBoard:
    """:class:`Board` over the Ray actor (awaits its ObjectRefs)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def join(self, member: str) -> dict[str, Any]:
        return await self.handle.call.remote("join", member)

    async def watch(self, member: str, seq: int, proposal: int, timeout_s: float = 10.0) -> dict[str, Any]:
        return await self.handle.call.remote("watch", member, seq, proposal, timeout_s)

    async def ack(self, member: str, proposal: int, ok: bool, error: str = "") -> None:
        await self.handle.call.remote("ack", member, proposal, ok, error)

    async def leave(self, member: str) -> None:
        await self.handle.call.remote("leave", member)

    async def propose(self, run_dir: str, version: str, timeout_s: float = 120.0) -> dict[str, Any]:
        return await self.handle.call.remote("propose", run_dir, version, timeout_s)


class _BoardActor(VersionBoard):
    """The board as an async Ray actor; exits once no member has called it for ``idle_exit_s``."""

    def __init__(self, run_dir: str, version: str, idle_exit_s: float = 120.0) -> None:
        super().__init__(run_dir, version)
        self._idle_exit_s = idle_exit_s
        self._reaper: asyncio.Task | None = None

    async def call(self, method: str, *args: Any) -> Any:
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())
        return await getattr(self, method)(*args)

    async def _reap(self) -> None:
        import ray

        while self.idle_for() < self._idle_exit_s:
            await asyncio.sleep(5.0)
        await ray.get_runtime_context().current_actor.exit.remote()

    async def exit(self) -> None:
        import ray

        ray.actor.exit_actor()


def board_handle(name: str, run_dir: str, version: str) -> Board:
    """The named board actor ``name`` (created with version ``run_dir``/``version`` by the first replica)."""
    import ray

    actor = ray.remote(_BoardActor).options(
        name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
        max_concurrency=1000, max_restarts=0)
    return _RayBoard(actor.remote(run_dir, version))
