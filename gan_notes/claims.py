r"""Claims: the results of a chapter that only its ``full`` run can establish.

A chapter's theory checks hold at any size and stay plain ``assert`` statements. Its
experimental findings ("R1 at least halves the late amplitude") hold only at the size of the
real experiment: the ``smoke`` profile runs the same code for a few steps, and a threshold
weakened until a tiny run passes it (``budget(full=100, smoke=0.0)``) checks nothing. Such a
finding is a *claim*:

.. math::

    \text{claim} = (\text{name},\ v,\ \circ,\ t), \qquad
    \text{passed} = (v \circ t), \quad \circ \in \{<, \le, >, \ge\}.

:func:`claim` evaluates it and records it in the cell's output: a line of text for the reader,
and the record itself (name, value, op, threshold, profile, passed) in the output's metadata
under :data:`METADATA_KEY`. In ``full`` a claim that fails raises ``AssertionError``; in
``smoke`` it is recorded and never raises. The committed notebooks are executed in ``full``,
and :func:`audit_notebook` checks their outputs: every claim of the source recorded exactly
once, from the ``full`` profile, and holding. So a claim can neither fail nor disappear
unnoticed.

The record sits in the metadata, not under a MIME type of its own, because the book's renderer
warns about (and the build treats as an error) any output MIME type it does not know.

A number the prose states is bound to the output that computed it with :func:`glue`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable

from gan_notes.config import PROFILES, profile

METADATA_KEY = "gan_notes.claim"
"""Key of a claim's record in its ``display_data`` output's metadata."""

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
"""The comparisons a claim may state: ``value op threshold``."""


@dataclass(frozen=True)
class Claim:
    """One evaluated claim: ``passed`` is ``value op threshold``, measured in ``profile``."""

    name: str
    value: float
    op: str
    threshold: float
    profile: str
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable record (JSON-serialisable)."""
        return asdict(self)

    def __str__(self) -> str:
        verdict = "holds" if self.passed else "FAILS"
        line = f"claim: {self.name}: {self.value:.4g} {self.op} {self.threshold:.4g} {verdict} ({self.profile} profile)"
        if self.profile != "full":
            line += "; binding only in the full profile"
        return line


def _finite_number(x: Any, arg: str) -> float:
    """``x`` as a float; a scalar number, finite, not a bool (``arg`` names it in errors)."""
    dtype = str(getattr(x, "dtype", ""))
    if isinstance(x, bool) or dtype in ("bool", "torch.bool"):
        raise TypeError(f"{arg} must be a number, got a bool ({x!r})")
    if isinstance(x, (str, bytes)) or not hasattr(x, "__float__"):
        raise TypeError(f"{arg} must be a real number, got {type(x).__name__}")
    shape = tuple(getattr(x, "shape", ()))
    if shape:
        raise TypeError(f"{arg} must be a scalar, got an array of shape {shape}; reduce it first (min, max, mean)")
    try:
        v = float(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{arg} must be a real number, got {x!r}") from err
    if not math.isfinite(v):
        raise ValueError(f"{arg} must be finite, got {v}")
    return v


def evaluate(name: str, value: Any, op: str, threshold: Any, profile_name: str | None = None) -> Claim:
    """Evaluate ``value op threshold`` without recording or raising.

    Parameters
    ----------
    name : str
        What is claimed, in words (non-empty).
    value : float, NumPy scalar or 0-d tensor
        The measured number; finite (a NaN or an infinity means the experiment broke).
    op : {"<", "<=", ">", ">="}
    threshold : float
        Finite: a claim against an infinite threshold cannot fail.
    profile_name : {"full", "smoke"}, optional
        The profile to record; default the active one, :func:`gan_notes.config.profile`.

    Returns
    -------
    Claim

    Raises
    ------
    TypeError
        ``name`` not a string, ``value`` or ``threshold`` not a real scalar (bools included).
    ValueError
        Empty ``name``, unknown ``op`` or profile, non-finite ``value`` or ``threshold``.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must not be empty")
    if not isinstance(op, str) or op not in OPS:
        raise ValueError(f"op must be one of {tuple(OPS)}, got {op!r}")
    v = _finite_number(value, "value")
    t = _finite_number(threshold, "threshold")
    prof = profile() if profile_name is None else profile_name
    if prof not in PROFILES:
        raise ValueError(f"profile_name must be one of {PROFILES}, got {prof!r}")
    return Claim(name=name.strip(), value=v, op=op, threshold=t, profile=prof, passed=bool(OPS[op](v, t)))


def _display(record: Claim) -> None:
    """Show the claim's line; under IPython, with the record in the output's metadata."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # IPython is not a dependency of the package
        get_ipython = None  # noqa: N806
    if get_ipython is not None and get_ipython() is not None:
        display({"text/plain": str(record)}, raw=True, metadata={METADATA_KEY: record.as_dict()})
    else:
        print(record)


def claim(name: str, value: Any, op: str, threshold: Any) -> None:
    """State a result of the full experiment: record it, and in ``full`` require it.

    Shows one line (``claim: <name>: <value> <op> <threshold> holds (full profile)``) and, in
    the cell's output metadata under :data:`METADATA_KEY`, the record of :func:`evaluate`.
    Call it once per claim, directly in the chapter's cell (not in a loop or a helper): the
    tests compare the claims recorded in each cell with the ``claim(`` calls in its source.

    Parameters
    ----------
    name, value, op, threshold
        As in :func:`evaluate`; the claim is ``value op threshold``.

    Raises
    ------
    AssertionError
        In the ``full`` profile, when the claim fails (after recording it). Never in ``smoke``:
        a tiny run cannot meet the thresholds of the real experiment.
    TypeError, ValueError
        Bad input, in every profile (see :func:`evaluate`).

    See also
    --------
    audit_notebook : the check of the committed outputs. Chapters 03 to 10 state claims.

    Examples
    --------
    >>> claim("R1 at least halves the late amplitude", ratio, "<", 0.5)  # doctest: +SKIP
    """
    record = evaluate(name, value, op, threshold)
    _display(record)
    if record.profile == "full" and not record.passed:
        raise AssertionError(
            f"claim {record.name!r} fails: {record.value!r} {record.op} {record.threshold!r} is false"
        )


_MAGIC = re.compile(r"^\s*[%!]")


def count_claim_calls(source: str) -> int:
    """The number of ``claim(...)`` calls (``claim`` or ``<module>.claim``) in a code cell.

    IPython magics (lines starting with ``%`` or ``!``) are ignored; a ``%%`` cell magic makes
    the cell hold no Python. Comments and strings do not count.
    """
    if source.lstrip().startswith("%%"):
        return 0
    code = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
    tree = ast.parse(code)
    return sum(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "claim")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "claim")
        )
        for node in ast.walk(tree)
    )


def recorded_claims(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """The claim records in a code cell's outputs (nbformat JSON), in order."""
    return [
        o["metadata"][METADATA_KEY]
        for o in cell.get("outputs", [])
        if o.get("output_type") == "display_data" and METADATA_KEY in o.get("metadata", {})
    ]


def _record_problem(rec: Any) -> str | None:
    """Why a recorded claim does not show a ``full``-profile claim that holds, or None."""
    if not isinstance(rec, dict):
        return f"a claim record that is not a mapping: {rec!r}"
    fields = ("name", "value", "op", "threshold", "profile", "passed")
    missing = [f for f in fields if f not in rec]
    if missing:
        return f"claim record {rec!r} lacks {missing}"
    try:
        again = evaluate(rec["name"], rec["value"], rec["op"], rec["threshold"], "full")
    except (TypeError, ValueError) as err:
        return f"claim {rec.get('name')!r}: invalid record ({err})"
    label = f"claim {again.name!r} ({again.value!r} {again.op} {again.threshold!r})"
    if rec["profile"] != "full":
        return f"{label} was recorded in the {rec['profile']!r} profile, not 'full'"
    if rec["passed"] is not True:
        return f"{label} did not hold"
    if not again.passed:
        return f"{label} is recorded as passed but its numbers say it fails"
    return None


def audit_notebook(nb: dict[str, Any]) -> list[str]:
    """Check the claims of an executed notebook (nbformat JSON); return the problems found.

    In every code cell, the number of claim records in the outputs must equal the number of
    ``claim(`` calls in the source (a claim that was never executed, or whose output was
    removed, is missing), and each record must come from the ``full`` profile and hold (its
    value, op and threshold are re-evaluated, so an edited record is caught too).

    Returns
    -------
    list of str
        One line per problem, naming the code cell (1-based, code cells only); empty when the
        notebook's claims are all present and hold.
    """
    problems = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for i, cell in enumerate(code, start=1):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        try:
            calls = count_claim_calls(src)
        except SyntaxError as err:
            problems.append(f"code cell {i}: cannot parse its source to count claims ({err.msg})")
            continue
        records = recorded_claims(cell)
        if len(records) != calls:
            problems.append(
                f"code cell {i}: {calls} claim( call(s) in the source but {len(records)} claim output(s); "
                "each claim must be called once, directly in the cell, and the cell executed in full"
            )
        problems += [f"code cell {i}: {p}" for p in map(_record_problem, records) if p]
    return problems


def glue(name: str, value: Any) -> Any:
    """Bind a value the chapter's prose cites to the cell that computed it (MyST-NB ``glue``).

    The prose writes ``{glue:text}`name:.2f``` where the number goes; the book renders the
    value from the committed outputs, and the build (warnings as errors) fails when no output
    holds ``name``. Where MyST-NB is not installed (a bare Colab runtime), nothing is recorded
    and the value is returned unchanged, so the chapter still runs.

    See also
    --------
    claim; Chapter 01 (the first chapter that binds its numbers).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    try:
        from myst_nb import glue as _glue
    except ImportError:  # not building the book: nothing reads the record
        return value
    _glue(name, value, display=False)
    return value
