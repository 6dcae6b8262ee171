"""The embedded infrastructure: a Kafka-protocol broker (tansu), Redis, and the SQLite data directory."""

from shared.stack.broker import EmbeddedBroker, tansu_binary
from shared.stack.process import (
    BinaryNotFoundError,
    ManagedProcess,
    PortInUseError,
    ProcessStatus,
    StackError,
)
from shared.stack.redis import EmbeddedRedis, redis_server_binary
from shared.stack.stack import Stack, UpReport
from shared.stack.system import free_port, port_in_use

__all__ = [
    "BinaryNotFoundError",
    "EmbeddedBroker",
    "EmbeddedRedis",
    "ManagedProcess",
    "PortInUseError",
    "ProcessStatus",
    "Stack",
    "StackError",
    "UpReport",
    "free_port",
    "port_in_use",
    "redis_server_binary",
    "tansu_binary",
]
