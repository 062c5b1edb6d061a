"""Progress bars for the long one-off steps (drawing the demo, scanning, caching, offline balancing): rich only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def track(items: Iterable[T], total: int, description: str, enabled: bool = True) -> Iterable[T]:
    if not enabled:
        return items
    from rich.progress import track as rich_track

    return rich_track(items, total=total, description=description)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """``with progress_bar(n, "...") as advance: advance(k)`` for work that completes in chunks."""
    if not enabled:
        yield lambda _n: None
        return
    from rich.progress import Progress

    with Progress() as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
