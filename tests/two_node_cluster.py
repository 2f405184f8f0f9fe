"""Two Ray nodes on one machine, started with the real ``ray start`` CLI, for multi-node tests.

Each node gets its own ports (nothing left to Ray's defaults, so neither node collides with the other nor with
other Ray clusters on the machine), its own ``--temp-dir`` (per node since Ray 2.x), one logical CPU and a custom
resource naming it. Token authentication is on (``RAY_AUTH_MODE=token``) with a fresh token handed to every Ray
command in ``RAY_AUTH_TOKEN``, so nothing is written to ``~/.ray/auth_token``.

Teardown never runs a bare ``ray stop`` (it stops every Ray cluster on the machine): it ends only the processes
whose command line names this cluster's temp dirs, and their descendants (the job drivers).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: worker ports per node: one per Ray worker process (Train workers, Serve replicas, Ray Data tasks, the job driver)
WORKER_PORTS = 200


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_range(n: int, taken: set[int], lo: int = 20000, hi: int = 60000) -> int:
    """First port of ``n`` consecutive ports on 127.0.0.1 that are free now and not in ``taken``."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        base = rng.randrange(lo, hi - n)
        ports = range(base, base + n)
        if not taken.intersection(ports) and all(_port_free(p) for p in ports):
            taken.update(ports)
            return base
    raise RuntimeError(f"no {n} consecutive free ports found in [{lo}, {hi})")


@dataclass
class TwoNodeCluster:
    """A head node and a worker node on 127.0.0.1, each with ``cpus`` logical CPUs (start with :meth:`start`)."""

    cpus: int = 1
    object_store_bytes: int = 300 * 1024**2  # small: two nodes on one machine share its /dev/shm
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gr2n-", dir="/tmp")))  # short: socket paths
    token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    gcs_port: int = 0
    dashboard_port: int = 0

    HEAD_RESOURCE = "graphrec_node_head"
    WORKER_RESOURCE = "graphrec_node_worker"

    @property
    def address(self) -> str:
        """GCS address for ``ray start --address`` / ``ray.init``."""
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        """The Jobs API and state API (``ray job submit --address``, ``ray list ... --address``)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self) -> dict[str, str]:
        """Environment for every Ray command against this cluster (the nodes, ``ray job``, ``ray list``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"))}
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_USAGE_STATS_ENABLED": "0",
                    # as jobs.common.RAY_ENV_DEFAULTS sets for local clusters: Train reports wait for this poll
                    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25"})
        return env

    def ray(self, *args: str, timeout_s: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``ray`` CLI with this cluster's environment; output captured as text."""
        exe = shutil.which("ray") or "ray"
        out = subprocess.run([exe, *args], env=self.env(), capture_output=True, text=True, timeout=timeout_s)
        if check and out.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args[:2])} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
                               f"{out.stderr[-3000:]}")
        return out

    def _node_ports(self, taken: set[int]) -> list[str]:
        ports = {name: free_port_range(1, taken) for name in
                 ("node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
                  "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port")}
        lo = free_port_range(WORKER_PORTS, taken)
        return [*(f"--{k}={v}" for k, v in ports.items()), f"--min-worker-port={lo}",
                f"--max-worker-port={lo + WORKER_PORTS - 1}"]

    def start(self) -> "TwoNodeCluster":
        """``ray start --head`` then ``ray start --address`` for the second node; waits until both are alive."""
        taken: set[int] = set()
        self.gcs_port = free_port_range(1, taken)
        self.dashboard_port = free_port_range(1, taken)
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}", "--num-gpus=0",
                  f"--object-store-memory={self.object_store_bytes}", "--disable-usage-stats"]
        self.ray("start", "--head", f"--port={self.gcs_port}", "--include-dashboard=true",
                 "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                 f"--ray-client-server-port={free_port_range(1, taken)}", f"--temp-dir={self.root / 'head'}",
                 f"--resources={json.dumps({self.HEAD_RESOURCE: 1})}", *common, *self._node_ports(taken))
        self.ray("start", f"--address={self.address}", f"--temp-dir={self.root / 'worker'}",
                 f"--resources={json.dumps({self.WORKER_RESOURCE: 1})}", *common, *self._node_ports(taken))
        deadline = time.monotonic() + 60
        while len(self.alive_nodes()) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"second node did not join: {self.alive_nodes()}")
            time.sleep(1)
        return self

    def alive_nodes(self) -> list[dict]:
        """``ray list nodes`` of ALIVE nodes (state API records: node_id, is_head_node, resources_total...)."""
        out = self.ray("list", "nodes", f"--address={self.dashboard_url}", "--format=json", "--detail",
                       "--filter", "state=ALIVE", check=False)
        return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []

    def actors(self) -> list[dict]:
        """``ray list actors --detail`` of every actor, alive or dead (dead ones keep their node_id)."""
        out = self.ray("list", "actors", f"--address={self.dashboard_url}", "--format=json", "--detail",
                       "--limit=10000")
        return json.loads(out.stdout)

    def processes(self) -> list:
        """The live processes of this cluster (psutil.Process): those naming its temp dirs or GCS port."""
        import psutil

        # the temp dir names most of them; the Ray Client server names only the GCS address
        gcs = re.compile(rf":{self.gcs_port}(?!\d)") if self.gcs_port else None
        mine = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if str(self.root) in cmd or (gcs is not None and gcs.search(cmd)):
                mine.append(proc)
        return mine

    def stop(self, grace_s: float = 10.0) -> None:
        """End this cluster's processes only (SIGTERM, then SIGKILL after ``grace_s``); remove its temp dirs."""
        import psutil

        procs = {p.pid: p for p in self.processes()}
        for p in list(procs.values()):
            try:
                procs.update({c.pid: c for c in p.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        procs.pop(os.getpid(), None)
        for p in procs.values():
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(list(procs.values()), timeout=grace_s)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        # late starters (a worker forked while we signalled): one more pass
        for p in self.processes():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
