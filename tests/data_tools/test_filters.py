"""Gopher's English rules are adapted where they cannot hold, so Chinese, Japanese and other-language prose is
not dropped by an English word filter. The prose below was written for these tests (no third-party text)."""

import pytest

from rlpt_verl.data_tools.filters import FilterConfig, filter_reason, words_of

ZH = (
    "今天早上下了一场大雨，街道上到处都是积水。我的邻居骑着自行车去市场买菜，回来的时候全身都湿透了。"
    "他笑着说，这样的天气虽然不方便，但是空气变得很清新。下午雨停了，孩子们在院子里玩水，老人们坐在门口聊天。"
    "晚上天空出现了很多星星，大家都觉得明天会是一个好天气。"
)
JA = (
    "朝から雨が降っていたので、駅まで歩くのに時間がかかった。電車はいつもより混んでいて、みんな傘を持っていた。"
    "会社に着くと、同僚がコーヒーを入れてくれた。午後には雨がやみ、窓から虹が見えた。"
    "帰り道、近くのパン屋で新しいパンを買って、家族と一緒に食べた。"
)
DE = (
    "Am Morgen regnete es stark, und die Straßen standen unter Wasser. Mein Nachbar fuhr mit dem Fahrrad zum "
    "Markt, um Gemüse zu kaufen, und kam völlig durchnässt zurück. Er lachte und meinte, dass die Luft nach "
    "einem solchen Regen viel frischer sei. Am Nachmittag hörte der Regen auf, die Kinder spielten im Hof, und "
    "die älteren Leute saßen vor den Türen und unterhielten sich über das Wetter der kommenden Woche."
)


@pytest.mark.parametrize("text", [ZH, JA])
def test_unspaced_prose_is_kept(text):
    words, unspaced = words_of(text)
    assert unspaced and len(words) > 100
    assert filter_reason(text) is None
    assert filter_reason(text[:30]) == "too_few_words"  # the length rule still holds, in characters


def test_the_english_stop_word_rule_is_skipped_only_where_it_cannot_hold():
    assert filter_reason(DE) == "stop_words"  # Latin script, no language given: the English rule applies
    assert filter_reason(DE, FilterConfig(languages=("de",))) is None  # languages set without en: skipped
    assert filter_reason(DE, FilterConfig(languages=("de", "en"))) == "stop_words"
    assert filter_reason(DE, FilterConfig(min_stop_words=0)) is None


def test_prepare_keeps_chinese_prose_by_default(tmp_path):
    import json
    import subprocess
    import sys

    corpus = tmp_path / "zh.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in (ZH, JA)))
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "prepare", str(corpus), "-o", str(tmp_path / "out"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    report = json.load(open(tmp_path / "out" / "prepare_report.json"))
    assert report["documents_kept"] == 2, report["dropped_by_reason"]
