"""The RLPT trainer's methods on a stub trainer (no GPU) against a real TransferQueue on a local Ray cluster."""

import pytest
import torch

from rlpt_verl.train.trainer import RLPTTrainer

# Three GRPO groups of 4 rollouts: two ASR prompts and one MSR prompt, known rewards and response lengths.
GROUPS = [
    ("rlpt_asr", [1.0, 0.0, 0.0, 0.0], [2, 2, 2, 2]),
    ("rlpt_asr", [1.0, 1.0, 0.0, 0.0], [2, 2, 2, 2]),
    ("rlpt_msr", [1.0, 1.0, 1.0, 0.0], [6, 6, 6, 6]),
]
LAMBDA = 0.25


@pytest.fixture(scope="module")
def tq(ray_cluster):
    import transfer_queue
    from omegaconf import OmegaConf

    conf = OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 2, "total_storage_size": 4096}}})
    transfer_queue.init(conf)
    yield transfer_queue
    transfer_queue.close()


def config(loss_agg_mode: str, lambda_mode: str, batch_size: int = 3, extra=()):
    from rlpt_verl.reward.loop import reward_config

    return reward_config(
        ".",
        overrides=[
            f"data.train_batch_size={batch_size}",
            *extra,
            "algorithm.adv_estimator=grpo",
            "actor_rollout_ref.rollout.n=4",
            f"actor_rollout_ref.actor.loss_agg_mode={loss_agg_mode}",
            f"+data.rlpt.lambda_mode={lambda_mode}",
            f"+data.rlpt.msr_lambda={LAMBDA}",
        ],
    )


def stub(cfg) -> RLPTTrainer:
    trainer = object.__new__(RLPTTrainer)  # no workers, no GPUs: only the methods under test
    trainer.config = cfg
    return trainer


def put_batch(tq, tag: str, extra=None, padding: int = 1):
    """Rows shaped as verl's agent loop writes them (keys uid_session_index), plus verl-style padding rows."""
    from transfer_queue import KVBatchMeta
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    keys, rows, tags = [], [], []
    for g, (source, rewards, lengths) in enumerate(GROUPS):
        for s, (r, n) in enumerate(zip(rewards, lengths, strict=True)):
            scores = torch.zeros(n)
            scores[-1] = r
            keys.append(f"{tag}g{g}_{s}_0")
            rows.append(
                {
                    "uid": f"{tag}g{g}",
                    "data_source": source,
                    "response_mask": torch.ones(n, dtype=torch.int64),
                    "rm_scores": scores,
                    "extra_fields": {"reward_extra_info": (extra or {}).get((g, s), {})},
                }
            )
            tags.append({"status": "success"})
    for p in range(padding):  # verl's padding: a copy of the first row with an empty response, uid of its own
        keys.append(f"{tag}pad_{p}_0")
        rows.append(
            {
                **rows[0],
                "uid": f"{tag}pad",
                "response_mask": torch.zeros(1, dtype=torch.int64),
                "rm_scores": torch.zeros(1),
            }
        )
        tags.append({"status": "success", "is_padding": True})
    tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(rows), tags=tags)
    return KVBatchMeta(keys=keys, tags=tags, partition_id="train")


def grpo(rewards):
    """GRPO by hand: (r - mean) / (unbiased std + 1e-6), per group."""
    r = torch.tensor(rewards)
    return ((r - r.mean()) / (r.std() + 1e-6)).tolist()


def row_advantages(tq, batch):
    adv = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["advantages"])["advantages"]
    rows = adv.unbind()
    for row in rows:  # outcome advantages: one value per row
        assert torch.allclose(row, row[0].expand_as(row)) or row.numel() == 0 or not row.any()
    return [float(row[0]) if row.numel() else 0.0 for row in rows]


@pytest.mark.parametrize(
    "loss_agg_mode, w_asr, w_msr",
    [
        # B = 12 rows, 8 ASR, 4 MSR: w_ASR = 12/((1+λ)·8) = 1.2, w_MSR = λ·12/((1+λ)·4) = 0.6
        ("seq-mean-token-mean", 1.2, 0.6),
        # T = 40 tokens, 16 ASR, 24 MSR: w_ASR = 40/((1+λ)·16) = 2.0, w_MSR = λ·40/((1+λ)·24) = 1/3
        ("token-mean", 2.0, 1 / 3),
    ],
)
def test_lambda_weights_scale_grpo_advantages_exactly(tq, loss_agg_mode, w_asr, w_msr):
    batch = put_batch(tq, f"w{loss_agg_mode}")
    metrics = {}
    stub(config(loss_agg_mode, "weight"))._compute_advantage(batch, metrics)
    got = row_advantages(tq, batch)
    expected = []
    for source, rewards, _ in GROUPS:
        w = w_asr if source == "rlpt_asr" else w_msr
        expected += [a * w for a in grpo(rewards)]
    assert got[:12] == pytest.approx(expected, abs=1e-5)
    assert got[12] == 0.0  # the padding row
    assert metrics["rlpt/lambda/weight_asr"] == pytest.approx(w_asr)
    assert metrics["rlpt/lambda/weight_msr"] == pytest.approx(w_msr)
    assert metrics["rlpt/lambda/applied"] == 1.0
    # At ratio 1 a row's PPO loss is -A_i per token, so aggregating the weighted advantages the way verl
    # aggregates the loss gives (J_ASR + λ·J_MSR)/(1+λ) with each J the same aggregate within its task.
    plain = sum((grpo(r) for _, r, _ in GROUPS), [])
    sources = [s for s, r, _ in GROUPS for _ in r]
    mass = [n for _, _, ls in GROUPS for n in ls] if loss_agg_mode == "token-mean" else [1] * 12
    loss = sum(a * m for a, m in zip(got[:12], mass, strict=True)) / sum(mass)

    def j(task):
        rows = [i for i, s in enumerate(sources) if s == task]
        return sum(plain[i] * mass[i] for i in rows) / sum(mass[i] for i in rows)

    assert loss == pytest.approx((j("rlpt_asr") + LAMBDA * j("rlpt_msr")) / (1 + LAMBDA), abs=1e-6)


def test_mix_mode_leaves_verls_advantages_untouched(tq):
    batch = put_batch(tq, "mix")
    metrics = {}
    stub(config("seq-mean-token-mean", "mix"))._compute_advantage(batch, metrics)
    expected = sum((grpo(r) for _, r, _ in GROUPS), [])
    assert row_advantages(tq, batch)[:12] == pytest.approx(expected, abs=1e-5)
    assert not any(k.startswith("rlpt/lambda") for k in metrics)


def test_a_batch_without_msr_is_not_reweighted(tq):
    global GROUPS
    saved, GROUPS = GROUPS, GROUPS[:2]
    try:
        batch = put_batch(tq, "asronly")
        metrics = {}
        stub(config("seq-mean-token-mean", "weight", batch_size=2))._compute_advantage(batch, metrics)
        assert row_advantages(tq, batch)[:8] == pytest.approx(sum((grpo(r) for _, r, _ in GROUPS), []), abs=1e-5)
        assert metrics["rlpt/lambda/applied"] == 0.0
    finally:
        GROUPS = saved


def test_task_metrics_from_the_transfer_queue(tq):
    # reward extra info as the `rlpt` manager reports it, per (group, rollout)
    extra = {}
    for g in range(3):
        for s in range(4):
            acc = GROUPS[g][1][s]
            extra[(g, s)] = {
                "acc": acc,
                "format_error": float(g == 0 and s == 3),
                "judge_error": float(g == 2 and s == 3),
                "judge_called": float(s != 0),  # the first rollout of each group took the textual shortcut
                "shortcut": float(s == 0),
                "judge_prompt_tokens": 300.0 * (s != 0),
                "judge_seconds": 0.5 * (s != 0),
                "reward_seconds": 0.5 * (s != 0) + 0.1,
            }
    batch = put_batch(tq, "metrics", extra=extra, padding=2)
    m = stub(config("seq-mean-token-mean", "mix")).rlpt_task_metrics(batch)
    asr, msr = "train-task/rlpt_asr", "train-task/rlpt_msr"
    assert m[f"{asr}/samples"] == 8 and m[f"{msr}/samples"] == 4  # padding rows are not counted
    assert m[f"{asr}/reward/mean"] == pytest.approx(3 / 8) and m[f"{msr}/reward/mean"] == pytest.approx(3 / 4)
    assert m[f"{asr}/acc/mean"] == pytest.approx(3 / 8) and m[f"{msr}/acc/mean"] == pytest.approx(3 / 4)
    assert m[f"{asr}/response_length/mean"] == 2 and m[f"{msr}/response_length/mean"] == 6
    assert m[f"{asr}/format_error/rate"] == pytest.approx(1 / 8) and m[f"{msr}/format_error/rate"] == 0
    assert m[f"{asr}/judge_error/rate"] == 0 and m[f"{msr}/judge_error/rate"] == pytest.approx(1 / 4)
    assert m[f"{asr}/judge_calls_avoided/share"] == pytest.approx(2 / 8)
    assert m[f"{msr}/judge_calls_avoided/share"] == pytest.approx(1 / 4)
    # the step's judge cost over the 12 real rows (the 2 padding rows are not counted)
    assert (m["rlpt/judge/samples"], m["rlpt/judge/calls"], m["rlpt/judge/avoided/shortcut"]) == (12, 9, 3)
    assert m["rlpt/judge/prompt_tokens"] == 9 * 300 and m["rlpt/judge/seconds"] == pytest.approx(9 * 0.5)
    assert m["rlpt/judge/share_of_reward_time"] == pytest.approx(4.5 / (4.5 + 1.2))


def test_other_verl_jobs_keep_verls_sync_trainer():
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    import rlpt_verl.train.runner as ours

    assert get_trainer_cls("sync") is PPOTrainerSync  # nothing registered over verl's name
    assert ours.trainer_class(config("seq-mean-token-mean", "mix")) is RLPTTrainer
    assert issubclass(RLPTTrainer, PPOTrainerSync)


def test_bad_lambda_settings_are_named():
    from rlpt_verl.train.trainer import rlpt_options

    with pytest.raises(ValueError, match="data.rlpt.lambda_mode must be one of"):
        rlpt_options(config("seq-mean-token-mean", "blend"))
    opts = rlpt_options(config("token-mean", "weight"))
    assert opts == {"lambda_mode": "weight", "msr_lambda": LAMBDA, "lambda_from": "data.rlpt.msr_lambda"}


def test_missing_samples_stop_the_step_before_the_update(tq):
    """verl 0.9.1 drops a sample whose reward raised (a judge that looks down raises in every reward worker)
    and pads the batch: the trainer counts what is missing and stops before the update, naming the judge."""
    from rlpt_verl.train.trainer import MissingSamplesError

    judge = ["reward.reward_kwargs.judge_base_url=http://judge-7:8000/v1", "reward.reward_kwargs.judge_model=J"]
    judge = ["+" + j for j in judge] + ["reward.reward_manager.name=rlpt"]
    batch = put_batch(tq, "complete", padding=4)  # 12 real rows of 3 prompts x 4: nothing missing
    metrics = {}
    stub(config("seq-mean-token-mean", "mix", extra=judge))._compute_advantage(batch, metrics)
    assert metrics["rlpt/rollout/missing_samples"] == 0.0 and metrics["rlpt/rollout/missing_share"] == 0.0
    # the same step when 4 prompts were asked for: 4 samples never came back (their reward raised)
    trainer = stub(config("seq-mean-token-mean", "mix", batch_size=4, extra=judge))
    trainer.global_steps = 7
    metrics = {}
    with pytest.raises(
        MissingSamplesError, match=r"step 7: 4 of 16 samples are missing \(25%.*judge at http://judge-7"
    ):
        trainer._compute_advantage(batch, metrics)
    assert metrics["rlpt/rollout/missing_samples"] == 4.0 and metrics["rlpt/rollout/missing_share"] == 0.25
    # a tolerance for rare rollout errors
    tolerant = stub(
        config("seq-mean-token-mean", "mix", batch_size=4, extra=[*judge, "+data.rlpt.max_missing_share=0.3"])
    )
    tolerant._compute_advantage(batch, {})


def test_validation_adds_unbiased_pass_at_k_next_to_verls_metrics():
    """verl's best@4 for 1 correct of 4 reads ≈ 0.68; the unbiased pass@4 is 1.0 (what the papers plot)."""
    from rlpt_verl.train.trainer import RLPTTrainer

    trainer = object.__new__(RLPTTrainer)  # _val_metrics_update only reads its arguments
    sources = ["math"] * 8 + ["rlpt_asr"] * 4
    uids = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    acc = [1, 0, 0, 0] + [0, 0, 0, 0] + [1, 1, 0, 1]
    extra = {"reward": [float(x) for x in acc], "acc": list(acc)}
    metrics = trainer._val_metrics_update(sources, uids, extra, [1] * 12)
    assert "val-core/math/acc/best@4/mean" in metrics  # verl's own are kept
    assert metrics["val-core/math/acc/best@4/mean"] < 0.9
    assert metrics["val-core/math/acc/pass@4"] == 0.5  # a: 1.0, b: 0.0
    assert metrics["val-core/math/acc/pass@1"] == pytest.approx((0.25 + 0) / 2)
    assert metrics["val-core/math/acc/pass@2"] == pytest.approx((1 - 3 / 6 + 0) / 2)  # 1 - C(3,2)/C(4,2)
    assert metrics["val-core/rlpt_asr/acc/pass@1"] == pytest.approx(0.75)
    no_acc = trainer._val_metrics_update(sources, uids, {"reward": [float(x) for x in acc]}, [1] * 12)
    assert no_acc["val-core/rlpt_asr/reward/pass@4"] == 1.0


def test_missing_samples_count_against_one_update_with_parameter_sync_step(tq):
    """trainer.v1.sync.parameter_sync_step=P splits a step into P updates of train_batch_size/P prompts each:
    a complete update of 3 prompts is not "missing" 9 of 24 samples when the batch is 6 prompts and P=2."""
    batch = put_batch(tq, "sync2", padding=4)  # 12 real rows = 3 prompts x 4
    trainer = stub(config("seq-mean-token-mean", "mix", batch_size=6, extra=["+trainer.v1.sync.parameter_sync_step=2"]))
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    assert metrics["rlpt/rollout/missing_samples"] == 0.0
    from rlpt_verl.train.trainer import MissingSamplesError

    with pytest.raises(MissingSamplesError, match=r"12 of 24 samples are missing"):
        stub(config("seq-mean-token-mean", "mix", batch_size=6))._compute_advantage(batch, {})


def test_validation_pass_at_k_counts_missing_samples_as_verl_mean_does():
    """A prompt whose samples never came back (their reward raised) is padded with acc=0 by verl's mean@N; the
    unbiased pass@k must use the same denominators, not only the survivors."""
    trainer = object.__new__(RLPTTrainer)
    sources, uids = ["rlpt_asr"] * 3, ["a", "a", "a"]  # a: 3 of 4 came back, all solved; b: none came back
    extra = {"reward": [1.0] * 3, "acc": [1.0] * 3}
    expected = {("rlpt_asr", "a"): 4, ("rlpt_asr", "b"): 4}
    metrics = trainer._val_metrics_update(sources, uids, extra, [1] * 3, expected_acc_counts=expected)
    assert metrics["val-core/rlpt_asr/acc/mean@4"] == pytest.approx((0.75 + 0) / 2)  # verl's padding
    assert metrics["val-core/rlpt_asr/acc/pass@1"] == pytest.approx(metrics["val-core/rlpt_asr/acc/mean@4"])
    assert metrics["val-core/rlpt_asr/acc/pass@4"] == pytest.approx(0.5)


def test_only_acc_and_reward_are_bootstrapped_the_rest_are_plain_means():
    """verl bootstraps every numeric extra key (1,000 iterations per prompt and key); the manager's 14 other keys
    are logged as plain means instead: same mean, no best@/worst@ bootstrap."""
    trainer = object.__new__(RLPTTrainer)
    sources, uids = ["rlpt_msr"] * 8, ["a"] * 4 + ["b"] * 4
    extra = {"reward": [1.0, 0, 0, 0, 1, 1, 0, 0], "acc": [1.0, 0, 0, 0, 1, 1, 0, 0]}
    extra["too_short"] = [0.0, 1, 1, 0, 0, 0, 0, 1]
    extra["pred_chars"] = [10.0, 20, 30, 40, 50, 60, 70, 80]
    metrics = trainer._val_metrics_update(sources, uids, extra, [1] * 8)
    assert "val-core/rlpt_msr/acc/best@4/mean" in metrics and "val-aux/rlpt_msr/reward/best@4/mean" in metrics
    assert metrics["val-aux/rlpt_msr/too_short/mean@4"] == pytest.approx(3 / 8)
    assert metrics["val-aux/rlpt_msr/pred_chars/mean@4"] == pytest.approx(45.0)
    assert not [k for k in metrics if "/too_short/" in k and ("best@" in k or "worst@" in k or "std@" in k)]


def test_the_legacy_trainer_is_refused_in_one_line_saying_what_works_there():
    from rlpt_verl.train.runner import run

    with pytest.raises(
        ValueError, match=r"run `python -m verl.trainer.main_ppo` instead: the rlpt/rpt reward managers"
    ):
        run(config("seq-mean-token-mean", "mix", extra=["trainer.use_v1=false"]))
