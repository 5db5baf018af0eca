"""The bounded store of compiled versions: least recently used first, per transform and in total.

Every new cache key (a new shape, a captured array changed by a training step...) adds a
compiled version; without a bound a loop over 2,000 shapes, or a training loop, grows memory
without end. A :class:`VersionCache` keeps at most ``MAX_PER_KEY`` guarded versions per key and
``MAX_PER_CACHE`` versions per transform, and all caches together at most ``MAX_TOTAL``: past a
bound, the least recently used key goes (of this cache, or of the least recently used cache).
An evicted version is only a cost (the function is traced again when needed), never a wrong
result.

Recency is the CLOCK approximation of LRU: whoever serves a version sets ``version.used =
True`` (one attribute store on the cached-call path); eviction walks keys oldest first, gives a
key whose versions were used a second chance (clears the marks, moves it to the end), and drops
the first key that was not used since. Caches are taken in the order they last stored.

>>> class Version:
...     used = False
>>> cache = VersionCache()
>>> for shape in range(MAX_PER_CACHE + 10):
...     cache.store(shape, Version())
>>> len(cache) == MAX_PER_CACHE and 0 not in cache and MAX_PER_CACHE + 9 in cache
True
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any

MAX_PER_KEY = 32  # guarded versions of one key (oldest dropped first)
MAX_PER_CACHE = 64  # versions of one transform, over all its keys
MAX_TOTAL = 1024  # versions of all transforms together

_caches: dict[int, weakref.ref] = {}  # every live cache
_sizes: dict[int, int] = {}  # versions each live cache held when it last settled
_total = 0  # their sum: checked on every store, so summing over all caches is rarely needed
_tokens = itertools.count()
_stores = itertools.count(1)
# Threads share caches and the totals: changes happen under this lock. Readers on the cached
# path take no lock: a key's version list is replaced on store, never edited in place.
_LOCK = threading.RLock()


def _forget(token: int) -> None:
    """A cache was collected: its versions no longer count."""
    global _total
    _caches.pop(token, None)
    _total -= _sizes.pop(token, 0)


class VersionCache(dict):
    """Compiled versions by cache key, most recent first per key (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        token = self._token = next(_tokens)
        self.stored = 0  # when this cache last stored (orders the caches for eviction)
        _sizes[token] = 0
        _caches[token] = weakref.ref(self)
        # weakref.finalize, not a ref callback: the simplification deadline recognises it and
        # does not fire into it (an exception there is lost and _forget would be skipped).
        weakref.finalize(self, _forget, token).atexit = False

    def store(self, key: Any, version: Any) -> None:
        """Add a version under ``key`` (tried first from now on), then enforce the bounds."""
        with _LOCK:
            older = self.pop(key, None) or []
            self[key] = [version, *older[:MAX_PER_KEY - 1]]  # re-inserted: the newest key
            self._settle()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """``dict.setdefault``, with recency and the bounds (vmap appends to the list)."""
        versions = self.get(key)
        if versions is not None:
            for version in versions:
                version.used = True
            return versions
        with _LOCK:
            self[key] = default
            self._settle()
        return default

    def versions(self) -> int:
        """How many versions this cache holds (a key with an empty list counts as one)."""
        return sum(len(v) or 1 for v in self.values())

    def evict_least_recent(self, keep: Any = None) -> int:
        """Drop the oldest key not used since its last second chance (never ``keep``); return
        how many versions went."""
        for key in list(self):
            if key == keep:
                continue
            versions = self[key]
            if any(getattr(v, "used", False) for v in versions):
                for v in versions:
                    v.used = False
                self[key] = self.pop(key)  # a second chance: to the end
                continue
            return len(self.pop(key)) or 1
        oldest = next((k for k in self if k != keep), None)  # every key was used: the oldest
        return 0 if oldest is None else len(self.pop(oldest)) or 1

    def recount(self) -> int:
        """Count this cache's versions again (vmap appends to its lists) into the total."""
        global _total
        size = self.versions()
        _total += size - _sizes.get(self._token, 0)
        _sizes[self._token] = size
        return size

    def _settle(self) -> None:
        self.stored = next(_stores)
        newest = next(reversed(self))
        size = self.versions()
        while size > MAX_PER_CACHE and len(self) > 1:
            size -= self.evict_least_recent(keep=newest)
        self.recount()
        if _total > MAX_TOTAL:
            _bound_total(self, newest)


def _live_caches() -> list[VersionCache]:
    while True:
        try:  # a cache collected meanwhile (its weakref callback) changes the registry
            refs = list(_caches.values())
        except RuntimeError:
            continue
        return [cache for ref in refs if (cache := ref()) is not None]


def _bound_total(current: VersionCache, newest: Any) -> None:
    """Evict keys of the caches that stored least recently, past ``MAX_TOTAL``."""
    live = _live_caches()
    for cache in live:
        cache.recount()
    live.sort(key=lambda cache: cache.stored)
    for cache in live:
        keep = newest if cache is current else None  # the version just stored stays
        while _total > MAX_TOTAL and len(cache) > (keep is not None):
            cache.evict_least_recent(keep)
            cache.recount()
        if _total <= MAX_TOTAL:
            return


def total_versions() -> int:
    """Compiled versions held by all caches together (for tests and tools)."""
    return sum(cache.versions() for cache in _live_caches())
