"""RLPTMixtureDataset through verl's own dataset factory, sampler and StatefulDataLoader."""

import json
import os

import pytest
from omegaconf import OmegaConf

from rlpt_verl.train.mixture import mixture_order, msr_per_batch

from ...conftest import BUDGET


def make_loader(built, tokenizer_dir, batch_size, **rlpt):
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    train = [os.path.join(built["dir"], f) for f in ("train_asr.parquet", "train_msr.parquet")]
    val = [os.path.join(built["dir"], f) for f in ("val_asr.parquet", "val_msr.parquet")]
    data = OmegaConf.create(
        {
            "train_files": train,
            "val_files": val,
            "train_batch_size": batch_size,
            "max_prompt_length": BUDGET,
            "filter_overlong_prompts": True,
            "shuffle": False,
            "custom_cls": {"path": "pkg://rlpt_verl.dataset", "name": "RLPTMixtureDataset"},
            **({"rlpt": rlpt} if rlpt else {}),
        }
    )
    tok = load_tokenizer(tokenizer_dir)
    ds = create_rl_dataset(train, data, tok, None, is_train=True)
    val_ds = create_rl_dataset(val, data, tok, None, is_train=False)
    loader = StatefulDataLoader(
        ds, batch_size=batch_size, drop_last=True, collate_fn=collate_fn, sampler=create_rl_sampler(data, ds)
    )
    return ds, val_ds, loader


@pytest.mark.parametrize("batch_size, lam", [(16, 0.5), (10, 0.25), (7, 1.0)])
def test_every_batch_has_the_exact_msr_share(built, tokenizer_dir, batch_size, lam):
    ds, _, loader = make_loader(built, tokenizer_dir, batch_size, msr_lambda=lam, seed=1)
    want = msr_per_batch(batch_size, lam)
    batches = list(loader)
    assert len(batches) == ds.mixture["batches"] > 3
    for batch in batches:
        sources = list(batch["data_source"])
        assert sources.count("rlpt_msr") == want and sources.count("rlpt_asr") == batch_size - want
    # rows are real rows: no duplicates within an epoch
    keys = [(e["task"], e["index"]) for b in batches for e in b["extra_info"]]
    assert len(keys) == len(set(keys))


def test_order_is_seeded_and_validation_untouched(built, tokenizer_dir):
    a, val, _ = make_loader(built, tokenizer_dir, 8, msr_lambda=1.0, seed=5)
    b, _, _ = make_loader(built, tokenizer_dir, 8, msr_lambda=1.0, seed=5)
    c, _, _ = make_loader(built, tokenizer_dir, 8, msr_lambda=1.0, seed=6)
    assert a.order == b.order and a.order != c.order
    assert val.order is None
    n_val = sum(built["report"]["samples"][k] for k in ("val_asr", "val_msr"))
    assert len(val) == n_val


def test_lambda_has_one_home_the_training_config(built, tokenizer_dir, tmp_path):
    """λ comes from data.rlpt.msr_lambda or the default; a build report (even an old one naming λ) is not read."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(built["dir"], data)
    report = json.load(open(data / "build_report.json"))
    assert "msr_lambda" not in report
    report["msr_lambda"] = 0.25  # what an older build wrote
    (data / "build_report.json").write_text(json.dumps(report))
    ds, _, _ = make_loader({**built, "dir": str(data)}, tokenizer_dir, 9)
    assert (ds.mixture["msr_lambda"], ds.mixture["lambda_from"]) == (0.5, "default")
    assert ds.mixture["msr_per_batch"] == 3
    ds, _, _ = make_loader({**built, "dir": str(data)}, tokenizer_dir, 10, msr_lambda=0.25)
    assert (ds.mixture["msr_lambda"], ds.mixture["lambda_from"]) == (0.25, "data.rlpt.msr_lambda")
    assert ds.mixture["msr_per_batch"] == 2


def test_mixture_order_pure():
    order = mixture_order(range(100), range(1000, 1050), batch_size=6, msr_lambda=0.5, seed=0)
    assert len(order) == 6 * min(100 // 4, 50 // 2)
    for k in range(0, len(order), 6):
        assert sum(i >= 1000 for i in order[k : k + 6]) == 2
    assert order == mixture_order(range(100), range(1000, 1050), batch_size=6, msr_lambda=0.5, seed=0)
    with pytest.raises(ValueError, match="0 MSR prompts"):
        msr_per_batch(4, 0.05)
    with pytest.raises(ValueError, match="4 MSR prompts per batch; lower λ"):
        msr_per_batch(4, 100)


def test_weight_mode_requires_the_rlpt_trainer(built, tokenizer_dir, monkeypatch):
    monkeypatch.delenv("RLPT_VERL_TRAINER", raising=False)
    with pytest.raises(ValueError, match="python -m rlpt_verl.main_ppo"):
        make_loader(built, tokenizer_dir, 8, lambda_mode="weight")
    monkeypatch.setenv("RLPT_VERL_TRAINER", "1")  # what RLPTTrainer sets in its process
    ds, _, _ = make_loader(built, tokenizer_dir, 8, lambda_mode="weight")
    assert ds.mixture["msr_per_batch"] == 3  # the composition is kept; the trainer's weights correct the rest


def _msr_keys(batches):
    return {(e["task"], e["index"]) for b in batches for e in b["extra_info"] if e["task"] == "msr"}


def test_unused_rows_rotate_in_across_epochs_and_resume(built, tokenizer_dir, monkeypatch):
    """λ = 0.25 with B = 10 takes 2 MSR rows per 8 ASR: most MSR rows are spare and must rotate in.

    verl's own SequentialSampler reads epoch 0's rows every epoch; through the RLPT trainer's loader
    every spare row is used within ``epochs_to_cover`` epochs, every batch keeps the exact mix, and a
    loader restored from ``state_dict`` mid-epoch (what verl saves in data.pt) continues identically.
    """
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from rlpt_verl.train.epoch_sampler import EpochSampler
    from rlpt_verl.train.trainer import RLPTTrainer

    ds, _, verl_loader = make_loader(built, tokenizer_dir, 10, msr_lambda=0.25, seed=3)
    assert ds.mixture["unused_msr"] > 0 and ds.mixture["epochs_to_cover"] >= 2
    assert _msr_keys(list(verl_loader)) == _msr_keys(list(verl_loader))  # verl alone: no rotation

    # what RLPTTrainer._init_dataloader does after verl's
    trainer = object.__new__(RLPTTrainer)
    monkeypatch.setattr(PPOTrainerSync, "_init_dataloader", lambda self: setattr(self, "train_dataloader", verl_loader))
    trainer._init_dataloader()
    loader = trainer.train_dataloader
    assert isinstance(loader.sampler, EpochSampler) and len(loader) == len(verl_loader) == ds.mixture["batches"]

    epochs = [list(loader) for _ in range(ds.mixture["epochs_to_cover"] + 1)]
    for batches in epochs:
        assert len(batches) == ds.mixture["batches"]
        for batch in batches:
            assert list(batch["data_source"]).count("rlpt_msr") == 2
        keys = [(e["task"], e["index"]) for b in batches for e in b["extra_info"]]
        assert len(keys) == len(set(keys))  # no row twice within an epoch
    per_epoch = [_msr_keys(b) for b in epochs]
    assert per_epoch[0] != per_epoch[1]
    all_msr = {("msr", e["index"]) for e in ds.dataframe["extra_info"] if e["task"] == "msr"}
    assert len(all_msr) == built["report"]["samples"]["train_msr"]
    assert set().union(*per_epoch[:-1]) == all_msr  # every MSR row within epochs_to_cover epochs

    # resume in the middle of epoch 1, in a fresh dataset and loader (workers on: the index crosses processes)
    fresh = epoch_loader_again(built, tokenizer_dir, num_workers=2)
    it = iter(fresh)
    for _ in range(len(fresh)):
        next(it)
    it = iter(fresh)
    head = [next(it), next(it)]
    state = fresh.state_dict()
    resumed = epoch_loader_again(built, tokenizer_dir, num_workers=2)
    resumed.load_state_dict(state)
    tail = list(resumed)
    as_keys = lambda bs: [[(e["task"], e["index"]) for e in b["extra_info"]] for b in bs]  # noqa: E731
    assert as_keys(head + tail) == as_keys(epochs[1])
    assert as_keys(list(resumed)) == as_keys(epochs[2])


def epoch_loader_again(built, tokenizer_dir, num_workers=0):
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.utils.dataset.rl_dataset import collate_fn

    from rlpt_verl.train.epoch_sampler import EpochSampler
    from rlpt_verl.train.trainer import epoch_dataloader

    ds, _, verl_loader = make_loader(built, tokenizer_dir, 10, msr_lambda=0.25, seed=3)
    loader = epoch_dataloader(verl_loader)
    if num_workers:
        sampler = EpochSampler(len(ds))
        loader = StatefulDataLoader(
            ds, batch_size=10, num_workers=num_workers, drop_last=True, collate_fn=collate_fn, sampler=sampler
        )
    return loader


def test_a_data_pt_from_verls_own_sampler_is_refused_not_restarted(built, tokenizer_dir):
    """verl's sampler state has no epoch: loaded into the epoch sampler, the mixture would silently start
    again at row 0 of epoch 0. A state from before any batch was read is fine."""
    from rlpt_verl.train.trainer import epoch_dataloader

    _, _, verl_loader = make_loader(built, tokenizer_dir, 10, msr_lambda=0.25, seed=3)
    fresh_state = verl_loader.state_dict()
    it = iter(verl_loader)
    next(it), next(it)
    mid_epoch = verl_loader.state_dict()
    _, _, again = make_loader(built, tokenizer_dir, 10, msr_lambda=0.25, seed=3)
    ours = epoch_dataloader(again)
    with pytest.raises(ValueError, match=r"written by verl's own sampler.*2 batches into an epoch.*data\.pt"):
        ours.load_state_dict(mid_epoch)
    ours.load_state_dict(fresh_state)
    assert len(list(ours)) == len(verl_loader)

    # our own loader's state, as the trainer saves it mid-epoch, resumes in a fresh one at the next batch
    it = iter(ours)
    head = [next(it), next(it)]
    _, _, again2 = make_loader(built, tokenizer_dir, 10, msr_lambda=0.25, seed=3)
    resumed = epoch_dataloader(again2)
    resumed.load_state_dict(ours.state_dict())
    keys = lambda bs: [[(e["task"], e["index"]) for e in b["extra_info"]] for b in bs]  # noqa: E731
    reference = epoch_dataloader(make_loader(built, tokenizer_dir, 10, msr_lambda=0.25, seed=3)[2])
    list(reference)  # epoch 0, as `ours` read it above
    assert keys(head + list(resumed)) == keys(list(reference))  # epoch 1, resumed after its second batch
