"""A value with a type and no elements: HDF5's null dataspace, h5py's ``Empty``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Empty:
    """An attribute value that has a dtype and nothing else (not even a shape)."""

    dtype: np.dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    def copy(self) -> Empty:
        return self  # immutable
