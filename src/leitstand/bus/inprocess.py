"""A bounded in-process queue measured in records, so memory stays bounded under any input rate."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):
    """The queue was closed; nothing more is accepted."""


class BoundedQueue(Generic[T]):
    """FIFO of items with a size (records); `put` refuses once `capacity` records wait."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._items: deque[tuple[T, int]] = deque()
        self._size = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def size(self) -> int:
        return self._size

    def put(self, item: T, size: int, timeout: float = 0.0) -> bool:
        """Enqueue `item`; wait up to `timeout` s for room. False if still full. An item larger than the
        whole capacity is accepted into an empty queue, so no single batch can be refused forever."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise QueueClosed("the ingest queue is closed")
                if self._size == 0 or self._size + size <= self.capacity:
                    self._items.append((item, size))
                    self._size += size
                    self._cond.notify_all()
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def take(self, max_size: int, timeout: float) -> list[T]:
        """Wait up to `timeout` s for items; return those waiting, up to `max_size` records (at least one)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    raise QueueClosed("the ingest queue is closed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)
            out: list[T] = []
            taken = 0
            while self._items and (not out or taken + self._items[0][1] <= max_size):
                item, size = self._items.popleft()
                out.append(item)
                taken += size
            self._size -= taken
            self._cond.notify_all()
            return out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
