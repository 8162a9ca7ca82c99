"""Every Redis key name of the contract, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "babel"

    def requests(self, service: str) -> str:
        """The request stream of ``service`` (read by its consumer group)."""
        return f"{self.prefix}:{service}:requests"

    def group(self, service: str) -> str:
        return f"{self.prefix}:{service}:workers"

    def dead_letters(self, service: str) -> str:
        return f"{self.prefix}:{service}:dead"

    def failover(self, service: str) -> str:
        """Hash of the service's failover counters: takeovers, taken_over, reclaimed."""
        return f"{self.prefix}:{service}:failover"

    def heartbeat(self, service: str, worker: str) -> str:
        return f"{self.prefix}:{service}:heartbeat:{worker}"

    def roster(self, service: str) -> str:
        """Sorted set of the service's workers by heartbeat expiry (unix seconds): an index
        read in O(log n) instead of SCANning the keyspace; the heartbeat keys stay the truth."""
        return f"{self.prefix}:{service}:roster"

    def services(self) -> str:
        """Set of every service that ever had a worker (candidates for discovery)."""
        return f"{self.prefix}:services"

    def heartbeat_pattern(self, service: str) -> str:
        return f"{self.prefix}:{service}:heartbeat:*"

    def heartbeat_pattern_all(self) -> str:
        return f"{self.prefix}:*:heartbeat:*"

    def reply(self, request_id: str) -> str:
        """Per-request list the caller waits on with BLPOP (TTL-bounded)."""
        return f"{self.prefix}:reply:{request_id}"

    def reply_stream(self, request_id: str) -> str:
        """Per-request stream of chunks for streaming replies (TTL-bounded)."""
        return f"{self.prefix}:reply-stream:{request_id}"

    def cancel(self, request_id: str) -> str:
        """Set by a caller that gave up on a streaming reply; the worker stops producing."""
        return f"{self.prefix}:cancel:{request_id}"
