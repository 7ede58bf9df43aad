"""Reading range answers into numpy: the fast path, the json fallback, and every way an answer can be wrong."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rightsize.sources.prometheus import parse_matrix


def _matrix(series, **dump) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": series}}, **dump).encode()


SERIES = [{"metric": {"namespace": "shop", "pod": "odd ]]} {\"metric\": name", "container": "app"},
           "values": [[1700000000, "0.25"], [1700000300, "1e-07"], [1700000600, "NaN"], [1700000900, "+Inf"]]},
          {"metric": {"namespace": "data", "pod": "db-0"}, "values": [[1700000000, "3"]]}]
COMPACT = _matrix(SERIES, separators=(",", ":"))


@pytest.mark.parametrize("body", [COMPACT, _matrix(SERIES, indent=2)], ids=["compact", "json-fallback"])
def test_values_and_timestamps_straight_into_numpy(body):
    got = parse_matrix(body, ["namespace", "pod", "container"])
    assert [s.key for s in got] == [("shop", 'odd ]]} {"metric": name', "app"), ("data", "db-0", "")]
    np.testing.assert_array_equal(got[0].values, [0.25, 1e-07, np.nan, np.inf])
    assert got[0].values.dtype == np.float64 and list(got[1].values) == [3.0]
    assert got[0].timestamps is None  # not parsed unless asked for
    timed = parse_matrix(body, ["namespace"], timestamps=True)
    assert list(timed[0].timestamps) == [1700000000, 1700000300, 1700000600, 1700000900]


def test_empty_result_and_extra_fields():
    assert parse_matrix(_matrix([], separators=(",", ":")), ["namespace"]) == []
    # VictoriaMetrics cluster adds "isPartial" before data, Prometheus 3 "infos"/"warnings" after it
    body = (b'{"status":"success","isPartial":false,"data":{"resultType":"matrix","result":'
            + json.dumps(SERIES, separators=(",", ":")).encode() + b'},"warnings":["x"]}')
    assert [s.key for s in parse_matrix(body, ["namespace"])] == [("shop",), ("data",)]


@pytest.mark.parametrize("cut, message", [
    (lambda b: b[: b.index(b'"+Inf"]]}') + 9], "cut off after 1 series"),  # a whole series, then nothing
    (lambda b: b[: b.index(b'"+Inf"]]}') + 10], "cut off after 1 series"),  # ... and its comma
    (lambda b: b[: b.index(b"1e-07") + 3], "cut off inside series 1"),  # in the middle of the values
    (lambda b: b[:-1], "cut off after 2 series"),  # only the last brace missing
])
def test_a_truncated_answer_is_an_error(cut, message):
    with pytest.raises(ValueError, match=message):
        parse_matrix(cut(COMPACT), ["namespace"])


def test_not_json_and_not_a_matrix():
    with pytest.raises(ValueError, match="not JSON"):
        parse_matrix(b"<html><body>Sign in</body></html>", ["namespace"])
    with pytest.raises(ValueError, match="successful matrix"):
        parse_matrix(b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]}}', ["a"])
    with pytest.raises(ValueError, match="successful matrix"):
        parse_matrix(b'{"status":"error","errorType":"timeout","error":"query timed out"}', ["a"])
