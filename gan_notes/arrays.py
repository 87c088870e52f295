"""Shared input handling: accept NumPy arrays or torch tensors, validate, return the same kind.

The package's array functions use these; their own docstrings say what they accept.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]


def is_torch(*xs: Any) -> bool:
    """True when any argument is a torch tensor: the computation then stays in torch."""
    return any(isinstance(x, torch.Tensor) for x in xs)


def as_arrays(names: tuple[str, ...], *xs: Any) -> tuple[Array, ...]:
    """Convert every argument to one kind: torch (if any is a tensor) or float64 NumPy.

    Torch tensors keep their graph; other inputs are converted to the dtype and device of
    the first tensor. Raises TypeError for inputs that are not numeric arrays.
    """
    if is_torch(*xs):
        ref = next(x for x in xs if isinstance(x, torch.Tensor))
        dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        out = []
        for name, x in zip(names, xs):
            if isinstance(x, torch.Tensor):
                out.append(x if x.is_floating_point() else x.to(dtype))
            else:
                out.append(torch.as_tensor(_numeric(name, x), dtype=dtype, device=ref.device))
        return tuple(out)
    return tuple(_numeric(name, x) for name, x in zip(names, xs))


def _numeric(name: str, x: Any) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from err
    return arr


def check_finite(name: str, x: Array) -> None:
    """Raise ValueError if x holds NaN or infinity."""
    bad = ~torch.isfinite(x.detach()) if isinstance(x, torch.Tensor) else ~np.isfinite(x)
    if bool(bad.any()):
        raise ValueError(f"{name} contains NaN or infinite entries")


def check_nonnegative(name: str, x: Array) -> None:
    """Raise ValueError for NaN/inf or negative entries."""
    check_finite(name, x)
    if bool((x.detach() < 0).any() if isinstance(x, torch.Tensor) else (x < 0).any()):
        raise ValueError(f"{name} has negative entries; probabilities and densities are >= 0")


def check_same_shape(names: tuple[str, str], a: Array, b: Array) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def total(x: Array) -> float:
    """Sum of all entries as a Python float, accumulated in float64."""
    if isinstance(x, torch.Tensor):
        return float(x.detach().double().sum())
    return float(np.sum(x, dtype=np.float64))


def mass_tolerance(x: Array) -> float:
    """Relative tolerance for 'sums to 1': 1e-6, loosened to the dtype's precision."""
    if isinstance(x, torch.Tensor):
        eps = torch.finfo(x.dtype).eps
    else:
        eps = np.finfo(x.dtype).eps
    return max(1e-6, 16 * eps)


def check_probability(name: str, x: Array, dx: float) -> None:
    """Raise ValueError unless x is a probability vector (dx=1) or a density with sum*dx = 1."""
    check_nonnegative(name, x)
    if size(x) == 0:
        raise ValueError(f"{name} is empty")
    mass = total(x) * dx
    if abs(mass - 1.0) > mass_tolerance(x):
        raise ValueError(
            f"{name} must sum to 1 (times dx={dx}); its mass is {mass:.8g}. "
            "Normalise it, or pass the grid spacing as dx for a density"
        )


def size(x: Array) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else int(x.size)


def check_dx(dx: float) -> float:
    try:
        dx = float(dx)
    except (TypeError, ValueError) as err:
        raise TypeError(f"dx must be a positive number, got {dx!r}") from err
    if not np.isfinite(dx) or dx <= 0:
        raise ValueError(f"dx must be a positive finite number, got {dx}")
    return dx


def array_sum(x: Array) -> Array:
    """Sum of all entries, of the input's kind: a torch tensor (differentiable) or a NumPy value."""
    return x.sum() if isinstance(x, torch.Tensor) else np.sum(x)
