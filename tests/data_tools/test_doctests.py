"""The docstring examples of data_tools/ (installed as rlpt_verl.data_tools, so pytest's collection of
testpaths does not import them under their real package name)."""

import doctest
import importlib

import pytest

MODULES = ["normalize", "filters", "dedup", "pii", "decontam", "quality", "document", "readers"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"rlpt_verl.data_tools.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    if name in ("normalize", "filters", "dedup", "pii", "decontam", "quality"):
        assert result.attempted > 0
