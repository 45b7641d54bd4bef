"""Type aliases shared by the recommendation modules.

scipy ships no type information, so a sparse matrix is `Any` to mypy; the alias at least
tells the reader which kind of matrix travels where.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

#: A `scipy.sparse.csr_matrix` (users x items unless stated otherwise).
Csr: TypeAlias = Any
FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]
BoolArray: TypeAlias = NDArray[np.bool_]
