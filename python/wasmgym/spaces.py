"""Gymnasium spaces from a wasmgym spec, one to one."""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

#: The characters of a Text space whose spec allows any character (Gymnasium's Text needs a
#: finite charset): Python's printable ASCII.
ANY_TEXT = string.printable

_DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32}


def _bound(x: Any) -> float:
    if x == "inf":
        return float("inf")
    if x == "-inf":
        return float("-inf")
    return float(x)


def to_gymnasium(space: dict[str, Any]) -> spaces.Space[Any]:
    """The Gymnasium space for a space of a wasmgym spec (`spec["observation_space"]`, ...)."""
    kind = space["type"]
    if kind == "discrete":
        return spaces.Discrete(int(space["n"]))
    if kind == "box":
        dtype = _DTYPES[space["dtype"]]
        shape = tuple(int(d) for d in space["shape"])
        low = np.array([_bound(x) for x in space["low"]], dtype=np.float64).reshape(shape)
        high = np.array([_bound(x) for x in space["high"]], dtype=np.float64).reshape(shape)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(np.int32)  # the only integer dtype of a Box
            low = np.clip(low, info.min, info.max)
            high = np.clip(high, info.min, info.max)
        return spaces.Box(low=low.astype(dtype), high=high.astype(dtype), shape=shape, dtype=dtype)
    if kind == "multi_discrete":
        return spaces.MultiDiscrete(np.array(space["nvec"], dtype=np.int64))
    if kind == "text":
        charset = space.get("charset") or ANY_TEXT
        return spaces.Text(max_length=int(space["max_length"]), min_length=0, charset=charset)
    raise ValueError(f"unknown space type {kind!r} in the environment's spec")
