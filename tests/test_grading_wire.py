"""The grader's wire format and comparators: values cross the sandbox wall exactly, or not at
all."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cnnlib.grading import wire
from cnnlib.grading.compare import Accuracy, Close, Table, from_spec


def _round_trip(value):
    return wire.decode(json.loads(json.dumps(wire.encode(value))))


@pytest.mark.parametrize("dtype", sorted(wire.ARRAY_DTYPES))
def test_arrays_keep_dtype_shape_and_bits(dtype):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((2, 3, 4)) * 50).astype(dtype)
    if np.issubdtype(array.dtype, np.floating):
        array[0, 0, 0] = np.nan
        array[1, 2, 3] = -np.inf
    back = _round_trip(array)
    assert isinstance(back, np.ndarray) and back.dtype == array.dtype and back.shape == (2, 3, 4)
    assert np.array_equal(back, array, equal_nan=np.issubdtype(array.dtype, np.inexact))


def test_empty_zero_d_and_non_contiguous_arrays():
    assert _round_trip(np.zeros((0, 3), np.float32)).shape == (0, 3)
    assert _round_trip(np.array(2.5)).shape == ()
    view = np.arange(24.0).reshape(4, 6)[:, ::2]
    assert np.array_equal(_round_trip(view), view)


def test_plain_values_and_containers():
    value = {"a": [1, 2.5, None, True], "b": (3, "x"), 4: {"nested": (np.int64(7),)}}
    back = _round_trip(value)
    assert back == {"a": [1, 2.5, None, True], "b": (3, "x"), 4: {"nested": (7,)}}
    assert isinstance(back["b"], tuple) and isinstance(back["a"], list)
    assert math.isnan(_round_trip(float("nan"))) and _round_trip(float("-inf")) == -math.inf


def test_a_lying_int_arrives_as_the_int_it_holds_and_is_named():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    plain = wire.encode([Liar(0), 1])
    assert wire.decode(plain) == [0, 1] and wire.decode(plain)[0] != 5  # a real int now
    assert {name.rsplit(".", 1)[-1] for name in wire.disguised_types(plain)} == {"Liar"}
    assert wire.disguised_types(wire.encode([0, 1.5, np.float32(2)])) == set()


def test_other_objects_are_opaque_and_equal_to_nothing():
    back = _round_trip(object())
    assert isinstance(back, wire.Opaque) and back != back and "object" in repr(back)
    assert isinstance(_round_trip(np.array([object()], dtype=object)), wire.Opaque)


@pytest.mark.parametrize(
    "plain",
    [
        {"t": "array", "dtype": "float64", "shape": [3], "b64": "AAAA"},  # wrong length
        {"t": "array", "dtype": "object", "shape": [1], "b64": ""},
        {"t": "array", "dtype": "int8", "shape": [-1], "b64": ""},
        {"t": "int", "v": "twelve"},
        {"t": "list", "v": 3},
        "not a dict",
    ],
)
def test_malformed_input_decodes_to_an_opaque_value(plain):
    assert isinstance(wire.decode(plain), wire.Opaque)


# --------------------------------------------------------------------------- comparators


def test_close_names_shape_dtype_and_the_first_wrong_element():
    expected = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert Close(rtol=1e-6).explain(expected.copy(), expected) is None
    assert "shape (4, 3)" in Close().explain(expected.reshape(4, 3), expected)
    assert "dtype float64, expected float32" in Close().explain(expected.astype(float), expected)
    assert Close(dtype=False).explain(expected.astype(float), expected) is None
    wrong = expected.copy()
    wrong[1, 2] += 0.5
    wrong[2, 3] += 2
    message = Close(rtol=1e-6).explain(wrong, expected)
    assert message.startswith("element [1, 2] is 6.5, expected 6.0")
    assert "2 of 12 elements differ; largest difference 2" in message


def test_close_wants_nan_exactly_where_nan_is_expected():
    expected = np.array([1.0, np.nan])
    assert Close().explain(np.array([1.0, np.nan]), expected) is None
    assert "element [1] is 0.0, expected nan" in Close().explain(np.array([1.0, 0.0]), expected)
    assert "element [0]" in Close().explain(np.array([np.nan, np.nan]), expected)


def test_close_on_numbers_tuples_and_dicts():
    assert Close().explain(55.0, 55) == "got 55.0 (float): the value is right but it must be an int"
    assert Close(rtol=1e-3).explain(1.0005, 1.0) is None
    assert Close().explain((1, 2), (1, 3)) == (
        "got (1, 2), expected (1, 3) (item 1: got 2, expected 3)"
    )
    grads = (np.zeros(2), np.ones(2))
    assert Close().explain((np.zeros(2), np.zeros(2)), grads).startswith("item 1: element [0]")
    assert "no 'out' entry" in Close().explain({"grads": grads}, {"out": 1, "grads": grads})


def test_table_and_accuracy():
    rows = [{"name": "conv1", "params": 520}, {"name": "pool1", "params": 0}]
    assert Table().explain([dict(r, extra=1) for r in rows], rows) is None
    assert Table().explain(rows[:1], rows) == "expected 2 rows, got 1"
    assert Accuracy(0.75).explain([1, 2, 3, 0], np.array([1, 2, 3, 3])) is None
    message = Accuracy(0.9).explain(np.array([1, 2, 0, 0]), np.array([1, 2, 3, 3]))
    assert message.startswith("accuracy 0.500 on 4 images") and "at least 0.900" in message
    assert "integer class labels" in Accuracy(0.5).explain(np.zeros(4), np.zeros(4, int))


@pytest.mark.parametrize("comparator", [Close(rtol=1e-4, atol=0, dtype=False), Table(1e-3),
                                        Accuracy(0.8)])  # fmt: skip
def test_comparators_cross_the_wall_as_specs(comparator):
    assert from_spec(json.loads(json.dumps(comparator.spec()))) == comparator
    assert from_spec({"kind": "custom"}) is None
