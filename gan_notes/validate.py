"""Argument checks shared by the package's public functions: one wording, bools refused.

``True`` is an ``int`` in Python; a flag passed where a count is meant is almost always a
slip, so every integer check here refuses bools. Each check raises ``ValueError`` (or
``TypeError`` for a wrong type) naming the argument, and returns the value as a plain Python
number so callers can use the result directly.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

__all__ = ["integer", "number", "choice"]


def integer(name: str, v, minimum: int = 1) -> int:
    """``v`` as an ``int >= minimum``; bools and floats are refused.

    Raises
    ------
    ValueError
        Not an integer, a bool, or below ``minimum``.
    """
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < minimum:
        what = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{name} must be {what}, got {v!r}")
    return int(v)


def number(name: str, v, minimum: float = 0.0, *, strict: bool = False) -> float:
    """``v`` as a finite ``float >= minimum`` (``> minimum`` when ``strict``); bools refused.

    Raises
    ------
    ValueError
        Not a number, a bool, NaN or infinite, or out of range.
    """
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number, got {v!r}") from err
    if not math.isfinite(f) or f < minimum or (strict and f == minimum):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum}, got {v!r}")
    return f


def choice(name: str, v, valid: Collection) -> object:
    """``v`` if it is one of ``valid``; else a ``ValueError`` listing the valid names."""
    if isinstance(v, bool) or v not in valid:
        raise ValueError(f"unknown {name} {v!r}; valid: {', '.join(map(str, valid))}")
    return v
