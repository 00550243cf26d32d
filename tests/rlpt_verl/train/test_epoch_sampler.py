"""EpochSampler inside torchdata's StatefulDataLoader, as verl 0.9.1 uses it (single and multi-process)."""

import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from rlpt_verl.train.epoch_sampler import EpochSampler


class Rows(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return i


def loader(num_workers):
    return StatefulDataLoader(Rows(), batch_size=2, num_workers=num_workers, drop_last=True, sampler=EpochSampler(6))


def flat(batches):
    return [int(i) for b in batches for i in b]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_each_pass_is_the_next_epoch_and_resume_continues_it(num_workers):
    a = loader(num_workers)
    assert [flat(a) for _ in range(3)] == [list(range(e * 6, e * 6 + 6)) for e in range(3)]  # no epoch skipped

    b = loader(num_workers)
    flat(b)  # epoch 0
    it = iter(b)
    head = [next(it), next(it)]  # 2 of epoch 1's 3 batches
    state = b.state_dict()
    c = loader(num_workers)
    c.load_state_dict(state)
    assert flat(head) + flat(c) == list(range(6, 12))
    assert flat(c) == list(range(12, 18))


def test_an_epoch_read_to_its_last_row_is_over_even_without_stop_iteration():
    """verl's trainer takes exactly len(loader) batches and then calls iter() again: that is the next epoch."""
    a = loader(0)
    it = iter(a)
    [next(it) for _ in range(len(a))]
    state = a.state_dict()
    assert flat(iter(a)) == list(range(6, 12))
    resumed = loader(0)
    resumed.load_state_dict(state)  # saved at the end of epoch 0
    assert flat(resumed) == [] and flat(resumed) == list(range(6, 12))
