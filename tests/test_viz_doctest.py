"""The examples in the viz modules' docstrings run as tests."""

import doctest
import importlib

import pytest

MODULES = ["mtl_tutor.viz.geometry", "mtl_tutor.viz.landscape", "mtl_tutor.viz.live"]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
