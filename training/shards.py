"""Which share of a record list this process handles, from ``RANK`` / ``WORLD_SIZE`` (set by
``torchrun``, ``accelerate launch``, or by hand on several machines).

Process ``k`` of ``n`` takes positions ``k, k + n, k + 2n, ...``: independent of timing, so a killed
process resumes its own share, and the union of the shares is the whole list. The data commands
(`training.refine_data`, `training.build_targets`) and `training.evaluate generate` shard this way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """This process's share of the items: positions ``index, index + count, ...``."""

    index: int = 0
    count: int = 1

    def take(self, items: Sequence) -> list:
        return [items[i] for i in range(self.index, len(items), self.count)]

    def view(self, items: Sequence) -> Sequence:
        """The share as a lazy sequence (items are fetched only when read: images stay on disk)."""
        return items if self.count == 1 else StridedView(items, self.index, self.count)

    @property
    def sharded(self) -> bool:
        return self.count > 1


class StridedView(Sequence):
    def __init__(self, base: Sequence, start: int, step: int) -> None:
        self._base, self._start, self._step = base, start, step

    def __len__(self) -> int:
        return max(0, (len(self._base) - self._start + self._step - 1) // self._step)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._base[self._start + index * self._step]


def shard_from_env(environ: Mapping[str, str] = os.environ) -> Shard:
    """``Shard(RANK, WORLD_SIZE)``; the whole list when they are unset."""
    try:
        world = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
    except ValueError as err:
        raise ValueError(f"RANK / WORLD_SIZE must be integers: {err}.") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}: check the launcher's environment.")
    return Shard(rank, world)
