"""Dense optical flow between two face frames, several methods behind one interface.

Registered in :data:`mertk.registry.FLOWS`:

- ``tvl1``: our batched PyTorch TV-L1, tuned for micro-motion (the default).
- ``tvl1_opencv``: OpenCV's Dual TV-L1 with OpenCV's defaults, the reference.
- ``farneback``: OpenCV Farneback.
- ``dis``: OpenCV dense inverse search.
- ``horn_schunck``: classic Horn-Schunck (Belaiche et al. 2020), optional coarse-to-fine.

STRCN-G (Xia et al. 2019) uses Sun, Roth and Black's Classic+NL flow, which is not implemented here;
TV-L1 is its documented substitute (both are robust-penalty variational flows; TV-L1 is what
SHCNN, STSTNet and LAENet use).

Flows are float32 ``H x W x 2`` ``(u, v)`` with ``next(x + u, y + v) ≈ prev(x, y)``; see
:mod:`mertk.preprocess.flow.base` for the input conventions.
"""

from . import horn_schunck, opencv, tvl1  # noqa: F401  (importing registers the methods)
from .base import FlowError, FlowMethod, compute_flow, compute_flow_batch, get_flow_method, to_grey
from .horn_schunck import HornSchunck
from .opencv import DIS, Farneback, TVL1OpenCV
from .tvl1 import TVL1

__all__ = [
    "DIS",
    "Farneback",
    "FlowError",
    "FlowMethod",
    "HornSchunck",
    "TVL1",
    "TVL1OpenCV",
    "compute_flow",
    "compute_flow_batch",
    "get_flow_method",
    "to_grey",
]
