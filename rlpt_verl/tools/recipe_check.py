"""`rlpt doctor RECIPE [overrides...]`: the problems a user would otherwise meet on the cluster.

verl 0.9.1 accepts several settings that silently do nothing or silently break RLPT; each check here
names one of them (verl 0.9.1) and the fix. :func:`check_config` is pure (a composed config in, a list of
problems out); :func:`compose_recipe` composes a shipped recipe name or a YAML path with overrides.
"""

from __future__ import annotations

import os

from rlpt_verl.errors import UserError
from rlpt_verl.reports import held_out_nothing, reports_beside

MANAGER_NAMES = {"rlpt", "RLPTRewardManager"}
RLPT_SOURCES = {"rlpt_asr", "rlpt_msr"}
SPAN_SOURCES = {"rlpt_span"}
RPT_SOURCES = {"rpt", "rpt_easy", "rpt_medium", "rpt_hard"}


def shipped_recipes() -> list[str]:
    """The recipe names `rlpt doctor` accepts without a path (the YAML files shipped in rlpt_verl.recipes)."""
    from importlib.resources import files

    return sorted(
        p.name[: -len(".yaml")]
        for p in files("rlpt_verl.recipes").iterdir()
        if p.name.endswith(".yaml")
        and p.name not in ("rlpt_fsdp_engine.yaml", "rlpt_megatron_engine.yaml")
        and not p.name.startswith(("rlpt_grpo_common", "rlpt_managed_judge", "grpo_paper"))
    )


def compose_recipe(recipe: str, overrides: list[str]):
    import yaml
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    by_path = recipe.endswith((".yaml", ".yml")) or os.sep in recipe
    try:
        if by_path:
            path = os.path.abspath(recipe)
            if not os.path.exists(path):
                raise UserError(f"recipe file not found: {recipe}")
            with initialize_config_dir(os.path.dirname(path), version_base=None):
                return compose(os.path.splitext(os.path.basename(path))[0], overrides=overrides)
        with initialize_config_module("rlpt_verl.recipes", version_base=None):
            return compose(recipe, overrides=overrides)
    except MissingConfigException as e:
        if by_path:
            raise UserError(f"cannot compose recipe {recipe!r}: {str(e).strip().splitlines()[0]}") from None
        import difflib

        names = shipped_recipes()
        close = difflib.get_close_matches(recipe, names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UserError(
            f"cannot compose recipe {recipe!r}: no shipped recipe by that name; {hint}shipped: {', '.join(names)} "
            "(or give a YAML path)"
        ) from None
    except yaml.YAMLError as e:  # a syntax error in the user's YAML (or a file it includes)
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        raise UserError(f"cannot compose recipe {recipe!r}: YAML syntax error{where}: {problem}") from None
    except (HydraException, OmegaConfBaseException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot compose recipe {recipe!r}: {first}") from None


def is_sft_config(cfg) -> bool:
    """verl's SFT trainer config (sft_trainer_engine): no reward, no rollout; checked by :func:`check_sft_config`."""
    return "reward" not in cfg and "actor_rollout_ref" not in cfg and "model" in cfg and "data" in cfg


def _model_problem(path, key: str) -> str | None:
    """A model path that is clearly a local folder (absolute, ``~``, ``./``, or with two or more slashes, which no
    Hugging Face id has) but does not exist: verl would fail on every node at start-up."""
    if path is None or "://" in str(path):
        return None
    path = str(path)
    local = path.startswith(("/", "~", "./", "../")) or path.count("/") >= 2
    local = local or (path.count("/") == 1 and os.path.isdir(path.split("/")[0]))
    if local and not os.path.isdir(os.path.expanduser(path)):
        return (
            f"{key}={path} is not a folder here: pass the model's local folder (every node needs it) or a "
            "Hugging Face id such as Qwen/Qwen3-4B-Base"
        )
    return None


def _same_files_problem(cfg) -> str | None:
    """Validation on the training files measures memorisation; allowed only where validation never runs (the
    RLVR recipe's advice for data converted with nothing held out)."""
    data, trainer = cfg.data, cfg.get("trainer") or {}
    train = {os.path.realpath(f) for f in _files(data.get("train_files")) if "://" not in f}
    val = {os.path.realpath(f) for f in _files(data.get("val_files")) if "://" not in f}
    validates = trainer.get("val_before_train", True) or (trainer.get("test_freq") or 0) > 0
    both = sorted(train & val)
    if both and validates:
        return (
            f"data.val_files repeats training files ({', '.join(both)}): validation would score memorised rows; "
            "use the val files the build wrote, or turn validation off (trainer.val_before_train=false "
            "trainer.test_freq=-1)"
        )
    return None


def check_sft_config(cfg) -> list[str]:
    """The checks that apply to verl's SFT trainer: data files (parquet with the messages column), the model."""
    import pyarrow.parquet as pq

    problems = []
    data = cfg.data
    key = data.get("messages_key") or "messages"
    for f in _files(data.get("train_files")) + _files(data.get("val_files")):
        if "://" in f:
            continue
        if not os.path.exists(f):
            problems.append(f"data file not found: {f} (write it with `rlpt sft-data`)")
            continue
        try:
            names = pq.ParquetFile(f).schema_arrow.names
        except Exception as e:
            problems.append(f"data file {f} is not readable parquet ({type(e).__name__}): write it with rlpt sft-data")
            continue
        if key not in names:
            problems.append(
                f"{f} has no {key!r} column (data.messages_key; columns: {', '.join(names[:6])}): write SFT data "
                "with `rlpt sft-data`"
            )
    problem = _model_problem((cfg.get("model") or {}).get("path"), "model.path")
    problems.extend([problem] if problem else [])
    problem = _same_files_problem(cfg)
    problems.extend([problem] if problem else [])
    return problems


def _files(value) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in ([value] if isinstance(value, str) else list(value))]


def check_config(cfg) -> list[str]:
    """Problems with a composed verl 0.9.1 PPO config for RLPT (or SFT config); empty when it is fine."""
    if is_sft_config(cfg):
        return check_sft_config(cfg)
    problems: list[str] = []
    get = cfg.get

    # 1. legacy top-level reward keys: accepted and ignored in 0.9.1
    legacy = []
    for section in ("reward_model", "custom_reward_function", "sandbox_fusion"):
        node = get(section)
        if node is None:
            continue
        for key, value in _flatten(node).items():
            if value is not None:  # all of them default to null
                legacy.append(f"{section}.{key}")
    if legacy:
        problems.append(f"legacy reward keys set ({', '.join(legacy)}): verl 0.9.1 ignores them; use reward.* keys")

    reward = cfg.reward
    manager = reward.reward_manager
    uses_rlpt = manager.name in MANAGER_NAMES
    rm = reward.reward_model
    if rm.enable and uses_rlpt:
        if reward.custom_reward_function.get("path") is None:
            problems.append(
                "verl-managed judge without reward.custom_reward_function.path: every sample goes to verl's "
                "/classify path and the rlpt manager is bypassed (set path=pkg://rlpt_verl.reward.rlpt_manager, "
                "name=compute_score_unused)"
            )
        if not rm.enable_resource_pool:
            problems.append(
                "judge colocated on the training GPUs (reward.reward_model.enable_resource_pool=false): verl hands "
                "the manager only raw_prompt; give the judge its own pool"
            )
        if rm.rollout.get("free_cache_engine", True):
            problems.append(
                "reward.reward_model.rollout.free_cache_engine=true: verl 0.9.1 puts the judge to sleep and nothing "
                "wakes it; set it to false"
            )
        if not (rm.n_gpus_per_node and rm.nnodes):
            problems.append("verl-managed judge with no GPUs (reward.reward_model.n_gpus_per_node / nnodes)")

    data = cfg.data
    custom = data.get("custom_cls") or {}
    rlpt_data = data.get("rlpt") or {}
    lambda_mode = rlpt_data.get("lambda_mode", "mix")
    from rlpt_verl.train.task_weights import lambda_problems_of

    problems.extend(lambda_problems_of(cfg))
    if lambda_mode == "weight" and cfg.trainer.v1.get("trainer_mode", "sync") != "sync":
        problems.append("data.rlpt.lambda_mode=weight needs trainer.v1.trainer_mode=sync")
    if custom.get("name") == "RLPTMixtureDataset":
        if data.get("shuffle"):
            problems.append("data.shuffle=true reorders the mixture dataset's batches: set data.shuffle=false")
        gen = data.get("gen_batch_size")
        if gen not in (None, data.train_batch_size):
            problems.append(f"data.gen_batch_size={gen} differs from data.train_batch_size: batches no longer hold λ")
    problems.extend(_run_problems(cfg))

    problems.extend(_reward_problems(cfg))
    msr_lambda = rlpt_data.get("msr_lambda")
    if msr_lambda is not None and not (isinstance(msr_lambda, int | float) and msr_lambda > 0):
        problems.append(f"data.rlpt.msr_lambda={msr_lambda}: λ must be a number > 0 (the paper's λ is in (0, 1))")

    missing = [
        f
        for f in _files(data.get("train_files")) + _files(data.get("val_files"))
        if "://" not in f and not os.path.exists(f)
    ]
    for f in [f for f in missing if f in _files(data.get("val_files")) and held_out_nothing(f)]:
        missing.remove(f)
        problems.append(
            f"{f} does not exist: the data was converted with --val-fraction 0 (nothing held out); run without "
            "validation (data.val_files=<the train file> trainer.val_before_train=false trainer.test_freq=-1) or "
            "convert again with --val-fraction 0.05"
        )
    problems.extend(_data_problems(cfg, [f for f in _files(data.get("train_files")) if f not in missing]))
    problems.extend(_data_problems(cfg, [f for f in _files(data.get("val_files")) if f not in missing], train=False))
    problems.extend(_val_problems(cfg, [f for f in _files(data.get("val_files")) if f not in missing]))
    if missing:
        problems.append(
            f"data files not found: {', '.join(missing)} (build them with `rlpt build`, or `rlpt build-rpt` for RPT)"
        )
    problem = _model_problem(cfg.actor_rollout_ref.model.get("path"), "actor_rollout_ref.model.path")
    problems.extend([problem] if problem else [])
    problem = _same_files_problem(cfg)
    problems.extend([problem] if problem else [])
    problems.extend(_mixture_problems(cfg, [f for f in _files(data.get("train_files")) if f not in missing]))
    budget = data.get("max_prompt_length")
    for report in reports_beside(_files(data.get("train_files")) + _files(data.get("val_files"))):
        longest, built = report.longest_prompt_tokens, report.built_max_prompt_tokens
        if longest is not None and budget is not None and longest > budget:
            problems.append(
                f"data.max_prompt_length={budget} is smaller than the built data (prompts up to {longest} tokens, "
                f"built with --max-prompt-tokens {built}, {report.path}): verl would drop or left-truncate them; "
                f"set data.max_prompt_length={built}"
            )
    return problems


def _run_problems(cfg) -> list[str]:
    """What only shows on the cluster: sizes that do not divide, and a run that never saves or validates."""
    problems = []
    trainer = cfg.trainer
    if not (trainer.get("save_freq") or 0) > 0:
        problems.append(
            f"trainer.save_freq={trainer.get('save_freq')}: this run never saves a checkpoint (no weights at the end, "
            "nothing to resume or to start RLVR from); set trainer.save_freq=50"
        )
    if not (trainer.get("test_freq") or 0) > 0 and trainer.get("val_before_train", True):
        problems.append(
            f"trainer.test_freq={trainer.get('test_freq')}: validation runs only before step 1; set it to 50"
        )
    if trainer.get("total_training_steps") is None and (trainer.get("total_epochs") or 0) > 5:
        problems.append(
            f"no step budget: trainer.total_training_steps is unset and total_epochs={trainer.total_epochs}; set "
            "trainer.total_training_steps"
        )
    problems.extend(_budget_problems(cfg))
    problems.extend(_cluster_problems(cfg))
    world = int(trainer.n_gpus_per_node) * int(trainer.nnodes)
    actor = cfg.actor_rollout_ref.actor
    if actor.get("strategy") == "megatron":
        meg = actor.get("megatron") or {}
        names = ("tensor_model_parallel_size", "pipeline_model_parallel_size", "context_parallel_size")
        model_parallel = 1
        for name in names:
            model_parallel *= int(meg.get(name) or 1)
    else:
        model_parallel = int(actor.get("ulysses_sequence_parallel_size") or 1)
    if world % model_parallel:
        return problems + [f"{world} training GPUs do not divide into model-parallel groups of {model_parallel}"]
    dp = world // model_parallel
    n = int(cfg.actor_rollout_ref.rollout.n)
    sizes = (
        ("data.train_batch_size", cfg.data.train_batch_size),
        ("actor.ppo_mini_batch_size", actor.ppo_mini_batch_size),
    )
    for name, size in sizes:
        if (int(size) * n) % dp:
            problems.append(
                f"{name}={size} x rollout.n={n} = {int(size) * n} rows do not divide across the data-parallel size "
                f"{dp} ({world} GPUs / model parallel {model_parallel}): verl asserts at the first update; use a "
                "GPU count that divides it (e.g. 4 or 8)"
            )
    tp = int(cfg.actor_rollout_ref.rollout.get("tensor_model_parallel_size") or 1)
    if world % tp:
        problems.append(f"rollout.tensor_model_parallel_size={tp} does not divide the {world} training GPUs")
    return problems


def _train_rows(cfg) -> int | None:
    """Rows of the training parquet files (None when one cannot be read): an upper bound on an epoch."""
    import pyarrow.parquet as pq

    rows = 0
    for f in _files(cfg.data.get("train_files")):
        if not (f.endswith(".parquet") and os.path.exists(f)):
            return None
        try:
            rows += pq.ParquetFile(f).metadata.num_rows
        except Exception:
            return None
    return rows


def _budget_problems(cfg) -> list[str]:
    """verl ends fit() after total_epochs even when total_training_steps is not reached (no last checkpoint
    and validation); it also keeps every checkpoint unless told otherwise."""
    trainer = cfg.trainer
    problems = []
    budget, epochs = trainer.get("total_training_steps"), trainer.get("total_epochs")
    rows, batch = _train_rows(cfg), int(cfg.data.train_batch_size)
    if budget and epochs and rows is not None and batch > 0:
        per_epoch = rows // batch  # verl's dataloader drops the last partial batch
        if per_epoch and per_epoch * int(epochs) < int(budget):
            problems.append(
                f"trainer.total_epochs={epochs} x {per_epoch} steps per epoch ({rows} training rows / batch {batch}) "
                f"= {per_epoch * int(epochs)} steps, fewer than trainer.total_training_steps={budget}: verl stops "
                "there, without the final checkpoint and validation; set trainer.total_epochs=1000000 (the step "
                "budget then decides)"
            )
    keep = trainer.get("max_actor_ckpt_to_keep")
    if keep is None and (trainer.get("save_freq") or 0) > 0:
        problems.append(
            "trainer.max_actor_ckpt_to_keep is unset: verl keeps every checkpoint (an 8B FSDP checkpoint with its "
            "optimizer is ~100 GB); set it, e.g. trainer.max_actor_ckpt_to_keep=3"
        )
    return problems


def _cluster_problems(cfg) -> list[str]:
    """A loopback external judge URL cannot serve reward workers on other nodes."""
    from rlpt_verl.train.cluster import is_loopback_url

    reward = cfg.reward
    if int(cfg.trainer.nnodes) <= 1 or reward.reward_manager.name not in MANAGER_NAMES or reward.reward_model.enable:
        return []
    url = (reward.get("reward_kwargs") or {}).get("judge_base_url")
    url = url if url is None or isinstance(url, str) else ",".join(map(str, url))  # a list of replicas
    if url and is_loopback_url(url):
        return [
            f"trainer.nnodes={cfg.trainer.nnodes} with the loopback judge URL {url}: verl places reward workers on "
            "every node and each would call its own machine; set RLPT_JUDGE_URL (reward.reward_kwargs."
            "judge_base_url) to an address every node can reach"
        ]
    return []


def _val_problems(cfg, files: list[str]) -> list[str]:
    """Validation rows x samples must fit TransferQueue's storage (all of validation goes out at once)."""
    import pyarrow.parquet as pq

    rows = 0
    for f in files:
        if f.endswith(".parquet") and os.path.exists(f):
            try:
                rows += pq.ParquetFile(f).metadata.num_rows
            except Exception:
                continue
    n = int(cfg.actor_rollout_ref.rollout.val_kwargs.get("n") or 1)
    tq = cfg.get("transfer_queue") or {}
    capacity = ((tq.get("backend") or {}).get("SimpleStorage") or {}).get("total_storage_size")
    if capacity and rows * n > int(capacity):
        return [
            f"validation sends {rows} rows x val_kwargs.n={n} = {rows * n} samples at once, more than "
            f"TransferQueue's total_storage_size {capacity}: rebuild with a smaller --val-max-rows, lower "
            "val_kwargs.n, or raise transfer_queue.backend.SimpleStorage.total_storage_size"
        ]
    return []


def _manager_class(cfg):
    """verl's own resolution of the reward manager class (after our plugin registered its names)."""
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    import rlpt_verl.plugin  # noqa: F401  (registers `rlpt`, `rpt` and `span`, as `import verl` does on the cluster)

    return resolve_reward_manager_cls(cfg)


def _reward_problems(cfg) -> list[str]:
    """The reward manager resolves, and ours accept their settings: the checks their constructors run at
    start-up on the cluster, with the same messages."""
    manager = cfg.reward.reward_manager
    try:
        cls = _manager_class(cfg)
    except Exception as e:  # verl raises ValueError/AssertionError/ImportError/AttributeError here
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return [
            f"reward manager {manager.name!r} (source={manager.source}) cannot be loaded: {first}; the shipped "
            "names are rlpt, rpt and span (or source=importlib with module.path=pkg://rlpt_verl.reward.rlpt_manager)"
        ]
    from rlpt_verl.llm_client import LLMConfigError
    from rlpt_verl.reward.rlpt_manager import RLPTRewardManager, judge_settings
    from rlpt_verl.reward.rpt_manager import RPTRewardManager, rpt_options
    from rlpt_verl.reward.span_manager import SpanRewardManager, span_options

    try:
        if issubclass(cls, RLPTRewardManager):
            managed = bool(cfg.reward.reward_model.get("enable"))
            judge_settings(cfg, reward_router_address="verl-router:0" if managed else None)
        elif issubclass(cls, RPTRewardManager):
            rpt_options(cfg)
        elif issubclass(cls, SpanRewardManager):
            span_options(cfg)
    except (LLMConfigError, ValueError) as e:
        return [str(e)]
    return []


def _sources(f: str) -> set:
    """The data_source values of a parquet file's first row group (empty when it has none or is unreadable)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(f)
        if "data_source" not in meta.schema_arrow.names or not meta.metadata.num_row_groups:
            return set()
        return set(meta.read_row_group(0, columns=["data_source"]).column(0).to_pylist())
    except Exception:
        return set()


def _mixture_problems(cfg, files: list[str]) -> list[str]:
    """ASR and MSR files without our mixture dataset: verl concatenates them, so the first epoch's batches are
    all ASR until the ASR rows run out (λ is never applied)."""
    try:
        cls = _manager_class(cfg)
    except Exception:
        return []
    from rlpt_verl.reward.rlpt_manager import RLPTRewardManager

    custom = cfg.data.get("custom_cls") or {}
    if not issubclass(cls, RLPTRewardManager) or (custom.get("path") and custom.get("name") == "RLPTMixtureDataset"):
        return []
    sources = set().union(*(_sources(f) for f in files if f.endswith(".parquet"))) if files else set()
    if sources >= RLPT_SOURCES:
        return [
            f"RLPT data (ASR and MSR) without the mixture dataset (data.custom_cls.path={custom.get('path')}, "
            f"name={custom.get('name')}): verl reads the files one after the other, so batches hold only ASR until "
            "it runs out and data.rlpt.msr_lambda is never applied; set data.custom_cls.path=pkg://rlpt_verl.dataset "
            "data.custom_cls.name=RLPTMixtureDataset (as the rlpt recipes do)"
        ]
    return []


def _columns(f: str) -> list[str] | None:
    """Column names of a data file verl can read (parquet schema, or the first JSON record's keys)."""
    import json

    import pyarrow.parquet as pq

    if f.endswith(".parquet"):
        return pq.ParquetFile(f).schema_arrow.names
    with open(f, encoding="utf-8", errors="replace") as fh:
        if f.endswith(".jsonl"):
            first = next((line for line in fh if line.strip()), "{}")
            record = json.loads(first)
        else:
            record = json.load(fh)
            record = record[0] if isinstance(record, list) and record else record
    return list(record) if isinstance(record, dict) else []


def _data_problems(cfg, files: list[str], train: bool = True) -> list[str]:
    """Empty files, and data the configured reward manager or dataset cannot use."""
    import pyarrow.parquet as pq

    problems = []
    try:
        cls = _manager_class(cfg)
    except Exception:
        cls = None
    from rlpt_verl.reward.rlpt_manager import RLPTRewardManager
    from rlpt_verl.reward.rpt_manager import RPTRewardManager
    from rlpt_verl.reward.span_manager import SpanRewardManager

    prompt_key = cfg.data.get("prompt_key") or "prompt"
    for f in files:
        if "://" in f:
            continue
        if not f.endswith((".parquet", ".json", ".jsonl")):
            problems.append(
                f"data file {f}: verl 0.9.1 reads .parquet, .json and .jsonl only; build RL rows from a text corpus "
                "with `rlpt build` (RLPT) or `rlpt build-rpt` (RPT)"
            )
            continue
        try:
            columns = _columns(f)
        except Exception as e:
            problems.append(f"data file {f} is not readable ({type(e).__name__})")
            continue
        if columns is not None and prompt_key not in columns:
            problems.append(
                f"data file {f} has no {prompt_key!r} column (data.prompt_key; it has {', '.join(columns[:6])}): it "
                "looks like a raw corpus, not RL rows; build them with `rlpt build` (RLPT), `rlpt build-rpt` (RPT) or "
                "`rlpt math-data` (RLVR)"
            )
            continue
        if not f.endswith(".parquet"):
            continue
        try:
            meta = pq.ParquetFile(f)
        except Exception as e:
            problems.append(f"data file {f} is not readable parquet ({type(e).__name__})")
            continue
        if meta.metadata.num_rows == 0:
            kind = "training" if train else "validation"
            problems.append(f"{kind} data file {f} has 0 rows: rebuild it, or drop it from the data files")
            continue
        names = meta.schema_arrow.names
        sources = set()
        if "data_source" in names:
            sources = set(meta.read_row_group(0, columns=["data_source"]).column(0).to_pylist())
        rm = meta.schema_arrow.field("reward_model").type if "reward_model" in names else None
        rm_fields = (
            {rm.field(i).name for i in range(rm.num_fields)} if rm is not None and hasattr(rm, "num_fields") else set()
        )
        if cls is not None and issubclass(cls, RPTRewardManager) and "token_byte_ends" not in rm_fields:
            problems.append(
                f"the rpt reward manager needs reward_model.token_byte_ends, which {f} lacks (data sources "
                f"{sorted(sources)}): build RPT data with `rlpt build-rpt`, not `rlpt build`"
            )
        if cls is not None and issubclass(cls, SpanRewardManager) and sources and not sources <= SPAN_SOURCES:
            problems.append(
                f"the span reward manager scores masked-span rows of `rlpt build-span` (data source rlpt_span); {f} "
                f"holds {sorted(sources)}: build them with `rlpt build-span RLPT_BUILD_DIR -o DIR --tokenizer TOK`"
            )
        if cls is not None and issubclass(cls, RLPTRewardManager) and sources and sources <= SPAN_SOURCES:
            problems.append(
                f"{f} holds masked-span rows (rlpt_span) but the reward manager is rlpt: use the span_grpo_fsdp "
                "recipe (exact-match reward), or RLPT data from `rlpt build`"
            )
        elif cls is not None and issubclass(cls, RLPTRewardManager) and sources and sources <= RPT_SOURCES:
            problems.append(
                f"{f} holds RPT rows (data sources {sorted(sources)}) but the reward manager is rlpt: use the "
                "rpt_grpo_fsdp recipe, or RLPT data from `rlpt build`"
            )
        elif cls is not None and issubclass(cls, RLPTRewardManager) and sources - RLPT_SOURCES - RPT_SOURCES:
            problems.append(
                f"{f} holds rows the rlpt judge cannot score (data sources {sorted(sources - RLPT_SOURCES)}, e.g. "
                "`rlpt math-data` RLVR rows): use the rlvr_grpo_fsdp recipe (verl's rule-based scorer) for them, or "
                "RLPT data from `rlpt build`"
            )
        custom = cfg.data.get("custom_cls") or {}
        if train and custom.get("name") == "RLPTMixtureDataset" and sources - {"rlpt_asr", "rlpt_msr"}:
            problems.append(
                f"RLPTMixtureDataset needs rlpt_asr/rlpt_msr rows; {f} holds {sorted(sources)} "
                "(pass train_asr.parquet and train_msr.parquet from `rlpt build`)"
            )
    return problems


def _flatten(node, prefix: str = "") -> dict:
    from omegaconf import DictConfig

    out = {}
    for key in node:
        value = node.get(key)
        name = f"{prefix}{key}"
        if isinstance(value, DictConfig):
            out.update(_flatten(value, name + "."))
        elif key != "_target_":
            out[name] = value
    return out
