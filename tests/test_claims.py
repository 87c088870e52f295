"""Unit tests of gan_notes.claims: what a claim means, how it is recorded, how it is audited."""

from __future__ import annotations

import json
import math
import operator

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gan_notes import claims
from gan_notes.claims import METADATA_KEY, audit_notebook, claim, count_claim_calls, evaluate
from gan_notes.config import ENV_VAR

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
REFERENCE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


# --- evaluate: the meaning of an op ----------------------------------------------------------


@pytest.mark.parametrize(
    "value, op, threshold, expected",
    [
        (1.0, "<", 2.0, True), (2.0, "<", 2.0, False), (3.0, "<", 2.0, False),
        (1.0, "<=", 2.0, True), (2.0, "<=", 2.0, True), (3.0, "<=", 2.0, False),
        (1.0, ">", 2.0, False), (2.0, ">", 2.0, False), (3.0, ">", 2.0, True),
        (1.0, ">=", 2.0, False), (2.0, ">=", 2.0, True), (3.0, ">=", 2.0, True),
    ],
)
def test_op_semantics_on_and_off_the_boundary(value, op, threshold, expected):
    assert evaluate("x", value, op, threshold, "full").passed is expected


@given(finite, st.sampled_from(sorted(REFERENCE)), finite)
def test_op_semantics_match_python(value, op, threshold):
    assert evaluate("x", value, op, threshold, "full").passed is REFERENCE[op](value, threshold)


@pytest.mark.parametrize(
    "value", [np.float32(0.25), np.float64(0.25), np.array(0.25), torch.tensor(0.25), 1, np.int64(1)],
    ids=["np.float32", "np.float64", "0-d array", "0-d tensor", "int", "np.int64"],
)
def test_scalars_of_every_kind_become_floats(value):
    rec = evaluate("x", value, "<", 2.0, "full")
    assert type(rec.value) is float and rec.value == float(value)
    assert json.loads(json.dumps(rec.as_dict())) == rec.as_dict()  # JSON-serialisable as it is


def test_record_fields():
    rec = evaluate("  ratio  ", 0.4, "<", 0.5, "smoke")
    assert rec.as_dict() == {"name": "ratio", "value": 0.4, "op": "<", "threshold": 0.5, "profile": "smoke", "passed": True}


def test_profile_defaults_to_the_active_one(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "full")
    assert evaluate("x", 1.0, "<", 2.0).profile == "full"
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert evaluate("x", 1.0, "<", 2.0).profile == "smoke"


# --- evaluate: bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["==", "!=", "lt", "=<", "", None, operator.lt])
def test_unknown_op_is_a_value_error(op):
    with pytest.raises(ValueError, match="op"):
        evaluate("x", 1.0, op, 2.0, "full")


@pytest.mark.parametrize("bad", [math.nan, np.nan, math.inf, -math.inf, np.float32("nan"), torch.tensor(float("nan"))])
def test_non_finite_value_is_a_value_error(bad):
    with pytest.raises(ValueError, match="value must be finite"):
        evaluate("x", bad, "<", 2.0, "full")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_threshold_is_a_value_error(bad):
    # budget(full=0.5, smoke=math.inf) was exactly such a claim that cannot fail
    with pytest.raises(ValueError, match="threshold must be finite"):
        evaluate("x", 1.0, "<", bad, "full")


@pytest.mark.parametrize(
    "bad",
    [True, np.bool_(True), torch.tensor(True), "0.5", [0.5], np.array([0.5, 0.6]), torch.tensor([0.5]), None, 1j],
    ids=["bool", "np.bool_", "bool tensor", "str", "list", "array", "1-element tensor", "None", "complex"],
)
def test_non_scalar_or_non_number_value_is_a_type_error(bad):
    with pytest.raises(TypeError, match="value"):
        evaluate("x", bad, "<", 2.0, "full")


def test_bad_threshold_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="threshold"):
        evaluate("x", 1.0, "<", False, "full")


@pytest.mark.parametrize("name, error", [("", ValueError), ("   ", ValueError), (None, TypeError), (3, TypeError)])
def test_bad_name(name, error):
    with pytest.raises(error, match="name"):
        evaluate(name, 1.0, "<", 2.0, "full")


def test_unknown_profile_is_a_value_error():
    with pytest.raises(ValueError, match="profile"):
        evaluate("x", 1.0, "<", 2.0, "medium")


# --- claim: full raises, smoke records ------------------------------------------------------


def test_full_raises_naming_the_claim_after_recording_it(monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "full")
    with pytest.raises(AssertionError, match="late amplitude"):
        claim("late amplitude, R1 / plain", 0.7, "<", 0.5)
    assert "late amplitude, R1 / plain: 0.7 < 0.5 FAILS (full profile)" in capsys.readouterr().out


def test_full_passes_silently_but_for_its_line(monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "full")
    assert claim("ratio", 0.3, "<", 0.5) is None
    assert capsys.readouterr().out.strip() == "claim: ratio: 0.3 < 0.5 holds (full profile)"


def test_smoke_records_a_failed_claim_without_raising(monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "smoke")
    claim("ratio", 0.7, "<", 0.5)  # no AssertionError
    out = capsys.readouterr().out
    assert "0.7 < 0.5 FAILS (smoke profile)" in out and "only in the full profile" in out


@pytest.mark.parametrize("profile", ["full", "smoke"])
def test_bad_input_raises_in_every_profile(monkeypatch, profile):
    monkeypatch.setenv(ENV_VAR, profile)
    with pytest.raises(ValueError):
        claim("ratio", math.nan, "<", 0.5)


def test_under_ipython_the_record_goes_to_the_output_metadata(monkeypatch):
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw, metadata: shown.append((obj, raw, metadata)))
    monkeypatch.setenv(ENV_VAR, "smoke")
    claim("ratio", 0.7, "<", 0.5)
    (obj, raw, metadata), = shown
    assert raw is True and list(obj) == ["text/plain"] and "ratio: 0.7 < 0.5 FAILS" in obj["text/plain"]
    assert metadata == {METADATA_KEY: {"name": "ratio", "value": 0.7, "op": "<", "threshold": 0.5,
                                       "profile": "smoke", "passed": False}}


# --- counting the claims of a cell -----------------------------------------------------------


@pytest.mark.parametrize(
    "source, n",
    [
        ("x = 1", 0),
        ('claim("a", 1, "<", 2)', 1),
        ('from gan_notes.claims import claim\n\nclaim("a", 1, "<", 2)\nclaim("b", 1,\n      ">", 0)', 2),
        ('claims.claim("a", 1, "<", 2)', 1),
        ('# claim("a", 1, "<", 2)\nprint("claim(")', 0),  # comments and strings do not count
        ('%matplotlib inline\n!ls\nclaim("a", 1, "<", 2)', 1),  # magics are skipped
        ('%%time\nclaim("a", 1, "<", 2)', 0),
        ("reclaim(1)\nclaimed = 2", 0),
    ],
)
def test_count_claim_calls(source, n):
    assert count_claim_calls(source) == n


# --- audit: hand-made executed notebooks --------------------------------------------------


def _output(name, value, op, threshold, profile="full", passed=None):
    rec = {"name": name, "value": value, "op": op, "threshold": threshold, "profile": profile,
           "passed": REFERENCE[op](value, threshold) if passed is None else passed}
    return {"output_type": "display_data", "data": {"text/plain": "claim: ..."}, "metadata": {METADATA_KEY: rec}}


def _cell(source, *outputs):
    return {"cell_type": "code", "source": source, "outputs": list(outputs), "metadata": {}, "execution_count": 1}


def _nb(*cells):
    return {"cells": [{"cell_type": "markdown", "source": "# T", "metadata": {}}, *cells], "metadata": {}}


def test_audit_accepts_claims_that_hold_in_full():
    nb = _nb(
        _cell("x = 1", {"output_type": "stream", "name": "stdout", "text": "claim: no record\n"}),
        _cell(['claim("a", 0.3, "<", 0.5)\n', 'claim("b", 2, ">=", 1)'], _output("a", 0.3, "<", 0.5), _output("b", 2.0, ">=", 1.0)),
    )
    assert audit_notebook(nb) == []


def test_audit_reports_a_failed_claim():
    nb = _nb(_cell('claim("a", 0.7, "<", 0.5)', _output("a", 0.7, "<", 0.5)))
    (problem,) = audit_notebook(nb)
    assert "code cell 1" in problem and "'a'" in problem and "did not hold" in problem


def test_audit_reports_a_missing_claim():
    nb = _nb(_cell("x = 1"), _cell('claim("a", 0.3, "<", 0.5)\nclaim("b", 0.3, "<", 0.5)', _output("a", 0.3, "<", 0.5)))
    (problem,) = audit_notebook(nb)
    assert "code cell 2" in problem and "2 claim( call(s)" in problem and "1 claim output(s)" in problem


def test_audit_reports_a_claim_in_a_loop():
    nb = _nb(_cell('for s in (1, 2):\n    claim("a", 0.3, "<", 0.5)', _output("a", 0.3, "<", 0.5), _output("a", 0.3, "<", 0.5)))
    assert len(audit_notebook(nb)) == 1


def test_audit_reports_a_claim_recorded_in_smoke_even_when_it_passed():
    nb = _nb(_cell('claim("a", 0.3, "<", 0.5)', _output("a", 0.3, "<", 0.5, profile="smoke")))
    (problem,) = audit_notebook(nb)
    assert "'smoke' profile" in problem


def test_audit_recomputes_passed():
    nb = _nb(_cell('claim("a", 0.7, "<", 0.5)', _output("a", 0.7, "<", 0.5, passed=True)))
    (problem,) = audit_notebook(nb)
    assert "numbers say it fails" in problem


@pytest.mark.parametrize(
    "record",
    [{"name": "a", "value": 0.3, "op": "<", "profile": "full", "passed": True},  # no threshold
     {"name": "a", "value": None, "op": "<", "threshold": 0.5, "profile": "full", "passed": True},
     {"name": "a", "value": 0.3, "op": "~", "threshold": 0.5, "profile": "full", "passed": True},
     "not a record"],
)
def test_audit_reports_a_malformed_record(record):
    out = {"output_type": "display_data", "data": {"text/plain": ""}, "metadata": {METADATA_KEY: record}}
    nb = _nb(_cell('claim("a", 0.3, "<", 0.5)', out))
    assert len(audit_notebook(nb)) == 1


def test_audit_reports_an_unparsable_cell():
    nb = _nb(_cell("claim(", ))
    (problem,) = audit_notebook(nb)
    assert "cannot parse" in problem


def test_claim_outputs_of_a_real_kernel_pass_the_audit(monkeypatch, tmp_path):
    """End to end: execute a tiny notebook in a kernel, in full, and audit what it wrote."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from gan_notes.claims import claim\nclaim('a', 0.3, '<', 0.5)\nprint('done')"),
        nbformat.v4.new_code_cell("claim('b', 0.3, '>', 0.5)"),
    ]
    monkeypatch.setenv(ENV_VAR, "full")
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="AssertionError"):
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    written = json.loads(nbformat.writes(nb))
    recorded = [claims.recorded_claims(c) for c in written["cells"]]
    assert [[r["name"] for r in cell] for cell in recorded] == [["a"], ["b"]]
    problems = audit_notebook(written)
    assert len(problems) == 1 and "code cell 2" in problems[0] and "'b'" in problems[0]
