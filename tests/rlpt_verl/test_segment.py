from pydoc_data.topics import topics

import pytest

from rlpt_verl.segment import Segment, join_segments, split_sentences


def texts(text):
    return [s.text for s in split_sentences(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Smith arrived. He sat down.", ["Dr. Smith arrived.", "He sat down."]),
        ("Prices rose, e.g. in Ohio. Then they fell.", ["Prices rose, e.g. in Ohio.", "Then they fell."]),
        ("It fits, i.e. it works. Good.", ["It fits, i.e. it works.", "Good."]),
        ("See Fig. 3 for details. It shows the trend.", ["See Fig. 3 for details.", "It shows the trend."]),
        (
            "The U.S. economy grew by 3.5 percent. Analysts agreed.",
            ["The U.S. economy grew by 3.5 percent.", "Analysts agreed."],
        ),
        ("Pi is 3.14159 roughly. Tau is 6.28.", ["Pi is 3.14159 roughly.", "Tau is 6.28."]),
        ("价格上涨了。人们很担心！政府会怎么做？", ["价格上涨了。", "人们很担心！", "政府会怎么做？"]),
        ("他说：“好。”然后走了。", ["他说：“好。”", "然后走了。"]),
    ],
)
def test_sentence_boundaries(text, expected):
    assert texts(text) == expected


def test_paragraph_breaks_and_list_items_split():
    text = "The plan has steps:\n\n1. Collect the data.\n2. Clean it\nthoroughly before use.\n- A dash item\n\nEnd."
    assert texts(text) == [
        "The plan has steps:",
        "1. Collect the data.",
        "2. Clean it thoroughly before use.",
        "- A dash item",
        "End.",
    ]


def test_paragraph_without_final_period_is_not_glued_to_next():
    assert texts("A title line\n\nThe body starts here.") == ["A title line", "The body starts here."]


def test_display_math_is_its_own_segment():
    text = "We have the identity\n$$\na^2 + b^2 = c^2\n$$\nwhich holds. It is old."
    assert texts(text) == ["We have the identity", "$$\na^2 + b^2 = c^2\n$$", "which holds.", "It is old."]
    assert texts("So \\[ x = 1 \\] here.\n\\[\ny = 2\n\\]\nDone.") == [
        "So \\[ x = 1 \\] here.",
        "\\[\ny = 2\n\\]",
        "Done.",
    ]


def test_code_lines_are_not_glued():
    fenced = "Run this:\n```python\nimport os\nprint(os.getcwd())\n```\nThat prints the folder."
    assert texts(fenced) == ["Run this:", "import os", "print(os.getcwd())", "That prints the folder."]
    rest = "For example::\n\n   x = compute(1)\n   y = x + 2\n\nThe result follows."
    assert texts(rest) == ["For example::", "x = compute(1)", "y = x + 2", "The result follows."]
    doctest = ">>> 1 + 1\n2\n\nAs shown."
    assert texts(doctest) == [">>> 1 + 1", "2", "As shown."]


def test_indented_prose_after_colon_stays_prose():
    text = "Note:\n\n   This method may be bypassed when looking up\n   special methods. See the docs.\n\nEnd."
    assert texts(text) == [
        "Note:",
        "This method may be bypassed when looking up special methods.",
        "See the docs.",
        "End.",
    ]


def test_rules_and_underlines_are_dropped_title_kept():
    assert texts("Customizing access\n******************\n\nBody text here.") == [
        "Customizing access",
        "Body text here.",
    ]


def test_separators_rebuild_the_layout():
    segs = split_sentences("One. Two.\n\nThree.\n- four")
    assert [s.sep for s in segs] == ["", " ", "\n\n", "\n"]
    assert join_segments(segs) == "One. Two.\n\nThree.\n- four"
    assert join_segments([Segment("x", "\n\n")]) == "x"


def test_real_text_properties():
    """On the stdlib's documentation topics: no split after a known abbreviation, nothing lost."""
    for name, text in topics.items():
        segs = split_sentences(text)
        assert segs, name
        for s in segs:
            assert s.text == s.text.strip() and s.text
            assert "\n\n" not in s.text or s.text.startswith(("$$", "\\[", "\\begin")), (name, s.text)
            assert not s.text.endswith((" e.g.", " i.e.", " Fig.", " Dr.", " etc.)")), (name, s.text)
        # every word of the document survives (decorative underlines aside)
        words = [w for w in text.split() if any(c.isalnum() for c in w)]
        kept = " ".join(s.text for s in segs).split()
        assert len(kept) >= len(words), name


def test_segments_bounded_on_real_code_heavy_topic():
    """A topic full of code examples must not collapse into one giant segment."""
    segs = split_sentences(topics["class"])
    assert max(len(s.text) for s in segs) < 1500
    assert any(s.text.startswith("class ") for s in segs)


def test_wrapped_cjk_lines_join_without_a_space():
    """Chinese and Japanese never put a space between characters; a soft wrap must not add one."""
    segs = split_sentences("价格在过去一年里上涨\n了很多。人们很担心\n未来的生活！\n日本語の文章も\n同じです。")
    assert [s.text for s in segs] == [
        "价格在过去一年里上涨了很多。",
        "人们很担心未来的生活！",
        "日本語の文章も同じです。",
    ]


@pytest.mark.parametrize(
    "block",
    [
        ["| model | score |", "| --- | --- |", "| base | 0.41 |"],
        ["name\tsize\tkind", "a.txt\t12\tfile", "b\t-\tdir"],
        ["total = 0", "for x in items:", "    total += x", "print(total)"],
    ],
)
def test_tables_and_plain_code_keep_one_line_per_segment(block):
    text = "Here it is.\n\n" + "\n".join(block) + "\n\nThat was all."
    segs = split_sentences(text)
    assert [s.text for s in segs] == ["Here it is.", *[line.strip() for line in block], "That was all."]
    assert join_segments(segs) == text.replace("    total", "total")  # layout rebuilt (indentation aside)
