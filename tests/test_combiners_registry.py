"""get_combiner, COMBINER_NAMES, option validation and repr for every combiner."""

import inspect

import pytest
import torch

from mtl_tutor.combiners import COMBINER_NAMES, Combiner, get_combiner


def test_names_are_unique_and_start_with_the_baseline():
    assert len(set(COMBINER_NAMES)) == len(COMBINER_NAMES)
    assert COMBINER_NAMES[:2] == ("sum", "pcgrad")


@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_every_name_builds_a_combiner_whose_repr_echoes_its_options(name):
    combiner = get_combiner(name, seed=1)
    assert isinstance(combiner, Combiner)
    assert combiner.name == name
    text = repr(combiner)
    assert text.startswith(type(combiner).__name__ + "(")
    for option in combiner.option_names:
        assert f"{option}=" in text
    accepted = list(inspect.signature(type(combiner)).parameters)
    assert sorted(combiner.option_names) == sorted(accepted)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid names: sum, pcgrad"):
        get_combiner("pcgard")


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid options: none"):
        get_combiner("sum", temperature=1.0)


def test_seed_reaches_the_combiner():
    G = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    G[1] = -G[0] + 0.1 * G[1]
    outputs = {s: get_combiner("pcgrad", seed=s)(G, torch.ones(4)) for s in range(6)}
    assert torch.equal(outputs[0], get_combiner("pcgrad", seed=0)(G, torch.ones(4)))
    assert any(not torch.equal(outputs[0], outputs[s]) for s in range(1, 6))


def test_bad_inputs_are_named():
    combine = get_combiner("pcgrad")
    with pytest.raises(ValueError, match="G must be"):
        combine(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="losses must have shape"):
        combine(torch.ones(3, 4), torch.ones(2))
