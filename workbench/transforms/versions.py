"""The bounded store of compiled versions: least recently used first, per transform and in total.

Every new cache key (a new shape, a captured array changed by a training step...) adds a
compiled version; without a bound a loop over 2,000 shapes, or a training loop, grows memory
without end. A :class:`VersionCache` keeps at most ``MAX_PER_KEY`` guarded versions per key and
``MAX_PER_CACHE`` versions per transform, and all caches together at most ``MAX_TOTAL``: past a
bound, the least recently used key goes (of this cache, or of the least recently used cache).
An evicted version is only a cost (the function is traced again when needed), never a wrong
result.

>>> cache = VersionCache()
>>> for shape in range(MAX_PER_CACHE + 10):
...     cache.store(shape, object())
>>> len(cache) == MAX_PER_CACHE and 0 not in cache and cache.lookup(MAX_PER_CACHE + 9) is not None
True
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from typing import Any

MAX_PER_KEY = 32  # guarded versions of one key (oldest dropped first)
MAX_PER_CACHE = 64  # versions of one transform, over all its keys
MAX_TOTAL = 1024  # versions of all transforms together

_caches: OrderedDict[int, weakref.ref] = OrderedDict()  # live caches, least recently used first
_tokens = itertools.count()


class VersionCache(OrderedDict):
    """Compiled versions by cache key, least recently used first (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        token = self._token = next(_tokens)
        _caches[token] = weakref.ref(self, lambda _, t=token: _caches.pop(t, None))

    def lookup(self, key: Any) -> list | None:
        """The versions stored under ``key`` (most recent first), marked as just used."""
        versions = self.get(key)
        if versions is not None:
            self.move_to_end(key)
            _caches.move_to_end(self._token)
        return versions

    def store(self, key: Any, entry: Any) -> None:
        """Add a version under ``key`` (tried first from now on), then enforce the bounds."""
        versions = self.get(key)
        if versions is None:
            versions = self[key] = []
        self.move_to_end(key)
        versions.insert(0, entry)
        del versions[MAX_PER_KEY:]
        self._settle()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """``dict.setdefault``, counted and bounded like ``store`` (vmap appends to the list)."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        self[key] = default
        self._settle()
        return default

    def versions(self) -> int:
        """How many versions this cache holds (a key with an empty list counts as one)."""
        return sum(len(v) or 1 for v in self.values())

    def _settle(self) -> None:
        _caches.move_to_end(self._token)
        size = self.versions()
        while size > MAX_PER_CACHE and len(self) > 1:
            size -= len(self.popitem(last=False)[1]) or 1
        _bound_total()


def _bound_total() -> None:
    """Evict least recently used keys of the least recently used caches past ``MAX_TOTAL``."""
    live = _live_caches()
    total = sum(cache.versions() for cache in live)
    for cache in live:  # least recently used first; the cache just used is last
        while total > MAX_TOTAL and len(cache) > (1 if cache is live[-1] else 0):
            total -= len(cache.popitem(last=False)[1]) or 1
        if total <= MAX_TOTAL:
            return


def _live_caches() -> list[VersionCache]:
    """The live caches, least recently used first."""
    while True:
        try:  # a cache collected meanwhile (its weakref callback) changes the registry
            refs = list(_caches.values())
        except RuntimeError:
            continue
        return [cache for ref in refs if (cache := ref()) is not None]


def total_versions() -> int:
    """Compiled versions held by all caches together (for tests and tools)."""
    return sum(cache.versions() for cache in _live_caches())
