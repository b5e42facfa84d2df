"""Name → object tables: model families, occlusion generators, adversarial and pixel
losses, training regimes, face embedders.

A :class:`Registry` is a ``dict`` (insertion order is the order names are listed in)
that knows what it holds, refuses a name registered twice, and turns an unknown name
into one ``ValueError`` that lists the valid ones. ``tests/test_registry.py`` checks
that every name the config and the command lines accept is in its table.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
_MISSING: Any = object()


class Registry(dict, Generic[T]):
    """A table of named objects.

    Args:
        what: what one entry is, for messages ("architecture", "adversarial loss").
        entries: the first entries, in order.
        listing: how the message introduces the valid names ("valid names", "known").
        sort: list the valid names sorted (else in registration order).
        error: the exception an unknown name raises (a ``ValueError`` subclass).
    """

    def __init__(self, what: str, entries: dict[str, T] | None = None, *,
                 listing: str = "valid names", sort: bool = False,
                 error: type[Exception] = ValueError):
        super().__init__()
        self.what, self.listing, self.sort, self.error = what, listing, sort, error
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    def register(self, name: str, obj: T = _MISSING) -> Any:
        """Add ``obj`` as ``name``; without ``obj``, a decorator that adds what it wraps."""
        if obj is _MISSING:
            def deco(fn: T) -> T:
                self.register(name, fn)
                return fn
            return deco
        if name in self:
            raise ValueError(f"{self.what} '{name}' is already registered")
        self[name] = obj
        return obj

    def names(self) -> list[str]:
        """The names, as an unknown name's message lists them."""
        return sorted(self) if self.sort else list(self)

    def lookup(self, name: str) -> T:
        """The entry ``name``; an unknown name raises :attr:`error` listing the valid ones."""
        try:
            return self[name]
        except (KeyError, TypeError):
            raise self.error(f"unknown {self.what} '{name}'; {self.listing}: "
                             f"{', '.join(self.names())}") from None
