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
