"""Judge settings from verl's composed config: kwargs, verl-managed router address, validation."""

import pytest

from rlpt_verl.llm_client import LLMConfigError, LLMSettings
from rlpt_verl.reward.loop import reward_config
from rlpt_verl.reward.rlpt_manager import judge_settings


def test_reward_kwargs_reach_the_settings(tokenizer_dir):
    cfg = reward_config(
        tokenizer_dir,
        {
            "judge_base_url": "http://judge:8000/v1",
            "judge_model": "Qwen/Qwen3-8B",
            "judge_concurrency": 7,
            "judge_chat_template_kwargs": {"enable_thinking": False},
            "max_length_ratio": 2.5,
        },
    )
    settings, options = judge_settings(cfg)
    assert settings.endpoint == "http://judge:8000/v1/chat/completions"
    assert settings.model == "Qwen/Qwen3-8B" and settings.concurrency == 7
    assert settings.chat_template_kwargs == {"enable_thinking": False}
    assert options.max_length_ratio == 2.5 and options.prefix_shortcut is True
    assert options.min_target_coverage == 0.8  # the documented default


def test_verl_managed_judge_router_address_and_model_path_win(tokenizer_dir):
    """One rule: an external judge is named by judge_model; a verl-managed judge always by
    reward.reward_model.model_path (the path vLLM was started with), even when judge_model is set, as
    the shared recipe sets it: overriding only the model path must change the name sent."""
    cfg = reward_config(
        tokenizer_dir,
        {"judge_base_url": "http://ignored:1/v1", "judge_model": "Qwen/Qwen3-8B"},
        overrides=["reward.reward_model.model_path=/models/judge"],
    )
    settings, _ = judge_settings(cfg, reward_router_address="10.0.0.5:30000")
    assert settings.endpoint == "http://10.0.0.5:30000/v1/chat/completions"
    assert settings.model == "/models/judge"
    external, _ = judge_settings(cfg)
    assert external.model == "Qwen/Qwen3-8B" and external.endpoint == "http://ignored:1/v1/chat/completions"


@pytest.mark.parametrize(
    "url, endpoint",
    [
        ("http://h:1", "http://h:1/v1/chat/completions"),
        ("http://h:1/v1/", "http://h:1/v1/chat/completions"),
        ("h:1", "http://h:1/v1/chat/completions"),
        ("https://api.x/v1/chat/completions", "https://api.x/v1/chat/completions"),
    ],
)
def test_endpoint_forms(url, endpoint):
    assert LLMSettings(base_url=url, model="m").endpoint == endpoint


def test_api_key_is_read_from_env_and_never_in_settings_text(monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret-123")
    settings = LLMSettings(base_url="http://h:1/v1", model="m", api_key_env="MY_JUDGE_KEY")
    settings.validate()
    assert "sk-secret-123" not in repr(settings)
    monkeypatch.delenv("MY_JUDGE_KEY")
    with pytest.raises(LLMConfigError, match="'MY_JUDGE_KEY', which is not set"):
        settings.validate()
