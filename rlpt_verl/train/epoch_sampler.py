"""A sequential sampler that tells the dataset which epoch it is reading, and survives checkpoint resume.

verl 0.9.1's ``create_rl_sampler`` offers a SequentialSampler (the same indices every epoch) or a
RandomSampler (which would break the per-batch ASR:MSR mix). :class:`RLPTMixtureDataset` needs a new
row order each epoch (:func:`rlpt_verl.train.mixture.mixture_order` rotates unused rows in), so this
sampler yields ``epoch * len + i`` and the dataset decodes the epoch from the index.

It is stateful in torchdata's way (like its ``RandomSampler``): the iterator's state is (epoch, rows
yielded), saved by ``StatefulDataLoader.state_dict`` in verl's ``data.pt`` and restored on resume, so
a resumed run continues the same epoch's order at the same row.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Sampler
from torchdata.stateful_dataloader import Stateful


class _EpochIterator(Iterator[int], Stateful):
    def __init__(self, sampler: EpochSampler, epoch: int):
        self.sampler = sampler
        self.epoch = epoch
        self.yielded = 0

    def __iter__(self):
        return self

    def __next__(self) -> int:
        if self.yielded >= self.sampler.n:
            raise StopIteration
        index = self.epoch * self.sampler.n + self.yielded
        self.yielded += 1
        if self.yielded == self.sampler.n:  # this epoch is read: the next iterator starts the next one
            self.sampler.epoch = max(self.sampler.epoch, self.epoch + 1)
        return index

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "yielded": self.yielded}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.yielded = int(state["epoch"]), int(state["yielded"])
        self.sampler.epoch = self.epoch + (self.yielded >= self.sampler.n)


class EpochSampler(Sampler[int]):
    """Indices ``epoch * n + i`` for i in 0..n-1; the epoch advances when one has been read to its end.

    Not on each ``iter()``: a multi-worker DataLoader creates two sampler iterators per pass (torch's
    ``_MultiProcessingDataLoaderIter`` and its ``_reset``), and verl may open a pass it does not finish.

    >>> s = EpochSampler(3)
    >>> list(s), list(s)
    ([0, 1, 2], [3, 4, 5])
    """

    def __init__(self, n: int, epoch: int = 0):
        self.n = int(n)
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        return _EpochIterator(self, self.epoch)

    def __len__(self) -> int:
        return self.n
