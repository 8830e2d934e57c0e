"""Whether a service can be reached: one quick attempt, so offline machines fail fast, not after retries."""

from __future__ import annotations

import socket


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
