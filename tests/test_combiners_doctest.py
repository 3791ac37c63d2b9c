"""The examples in the combiners' docstrings run as tests."""

import doctest
import importlib
import pkgutil

import pytest

import mtl_tutor.combiners as combiners

MODULES = ["mtl_tutor.combiners"] + [
    f"mtl_tutor.combiners.{info.name}" for info in pkgutil.iter_modules(combiners.__path__)
]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
