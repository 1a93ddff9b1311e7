"""The conv2d algorithms: one table that everything else reads.

Each entry says its name, what it is, which devices have it, which geometries it runs (a refusal
reason otherwise), which channel-blocked layouts it reads and writes, whether its weights are
prepared in C++, and the error bound the tests hold it to. pycnn.algorithms(), the validation of
algo=, the autotuner's candidates, the auto rule's candidate set, the Graph's layout pass, the
test parametrization and the bench's algorithm lists all come from here.

Kinds:
  native  weights prepared once in C++ (pycnn._C.PreparedWeights); the entries come from the C++
          table kernels/cpu/conv2d_algos.cpp, with its refusal and layout rules;
  python  run per call in Python (the NumPy reference, numba's JIT);
  choice  a name that picks one of the others for each shape (pycnn/policy.py): 'auto',
          'winograd' (the Winograd tile).
Adding a native algorithm is one kernel file and one entry in conv2d_algos.cpp; this table, and
so everything above, picks it up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import _C, numba_conv
from ._shapes import ConvShape

NATIVE, PYTHON, CHOICE = "native", "python", "choice"


def geometry(s: ConvShape) -> list:
    """The 16 numbers the C++ side describes a convolution by (ConvParams)."""
    return [
        s.N,
        s.C,
        s.H,
        s.W,
        s.K,
        s.R,
        s.S,
        s.stride[0],
        s.stride[1],
        s.pad[0],
        s.pad[1],
        s.dilation[0],
        s.dilation[1],
        s.groups,
        s.Ho,
        s.Wo,
    ]


@dataclass(frozen=True)
class ConvAlgo:
    name: str
    summary: str
    kind: str
    devices: tuple = ("cpu",)
    rel_error_bound: float = 0.0  # > 0: the bound on max|y - y64| / max|y64| tests hold it to
    refuse: Callable[[ConvShape], str] = field(default=lambda s: "", repr=False)
    blocked: Callable[[ConvShape, int], bool] = field(default=lambda s, bits: bits == 0, repr=False)
    available: Callable[[], bool] = field(default=lambda: True, repr=False)
    # > 0: the same on kernels other than 3x3 (Winograd's 5x5 and one-dimensional tiles)
    rel_error_bound_other: float = 0.0

    def supports(self, s: ConvShape) -> bool:
        """Whether it runs the convolution s."""
        return not self.refuse(s)

    def error_bound(self, s: ConvShape) -> float:
        """The bound on max|y - y64| / max|y64| for the convolution s (0: exact arithmetic)."""
        return self.kernel_error_bound(s.R, s.S)

    def kernel_error_bound(self, R: int, S: int) -> float:
        """The same for any convolution with an R x S kernel."""
        other = (R, S) != (3, 3) and self.rel_error_bound_other
        return self.rel_error_bound_other if other else self.rel_error_bound

    def layout_ok(self, s: ConvShape, bits: int) -> bool:
        """Whether it runs s with these channel-blocked layout bits (pycnn/layout.py)."""
        return self.blocked(s, bits)

    @property
    def prepared(self) -> bool:
        """Weights transformed once in C++ (a _C.PreparedWeights handle)."""
        return self.kind == NATIVE


def _native(name: str, summary: str, bound: float, bound_other: float) -> ConvAlgo:
    return ConvAlgo(
        name,
        summary,
        NATIVE,
        rel_error_bound=bound,
        rel_error_bound_other=bound_other,
        refuse=lambda s: _C.conv_algorithm_refusal(name, geometry(s)),
        blocked=lambda s, bits: _C.conv_algorithm_layout_ok(name, geometry(s), bits),
    )


def _winograd_refusal(s: ConvShape) -> str:
    return _C.conv_algorithm_refusal("winograd_f2", geometry(s))


_NATIVE = [_native(*entry) for entry in _C.conv_algorithms()]
_TABLE = (
    [ConvAlgo("auto", "the rule of pycnn/select.py (or the autotuner, or PYCNN_CONV_ALGO) picks per shape", CHOICE)]
    + _NATIVE
    + [
        ConvAlgo("winograd", "the Winograd tile pycnn/select.py picks for the shape", CHOICE, refuse=_winograd_refusal),
        ConvAlgo("reference", "the NumPy reference (pycnn/reference.py): slow, the oracle", PYTHON),
        ConvAlgo(
            "numba", "direct loops JIT-compiled by numba (pycnn/numba_conv.py)", PYTHON, available=numba_conv.available
        ),
        ConvAlgo(
            "numba_im2col", "im2col + a matrix product, JIT-compiled by numba", PYTHON, available=numba_conv.available
        ),
    ]
)
CONV = {a.name: a for a in _TABLE}

# The CUDA kernels (kernels/cuda/*.cu), the same on a GPU ('cuda') and on the CPU emulator
# ('cuda_emu'); weights prepared by pycnn/cuda/conv.py. Names shared with the CPU are the same
# algorithm; 'implicit_gemm' is the GPU's own.
GPU = ("cuda", "cuda_emu")


def _gpu_winograd_refusal(s: ConvShape) -> str:
    if (s.R, s.S) != (3, 3) or s.stride != (1, 1) or s.dilation != (1, 1) or s.groups != 1:
        return "runs 3x3 convolutions with stride 1, dilation 1 and groups 1 only"
    return ""


_GPU_TABLE = [
    ConvAlgo("auto", "the GPU rule of pycnn/cuda/select.py (or the autotuner, timing with CUDA events)", CHOICE, GPU),
    ConvAlgo("direct", "one thread per output element (first layers, small shapes)", NATIVE, GPU, 5e-6),
    ConvAlgo("im2col", "im2col into a bounded workspace, then the tiled SGEMM batched over images", NATIVE, GPU, 5e-6),
    ConvAlgo(
        "implicit_gemm",
        "the tiled SGEMM with the im2col gather folded into its cp.async shared-memory loads",
        NATIVE,
        GPU,
        5e-6,
    ),
    ConvAlgo(
        "winograd_f2", "Winograd F(2x2,3x3): transforms + batched SGEMM", NATIVE, GPU, 5e-6, _gpu_winograd_refusal
    ),
    ConvAlgo(
        "winograd_f4", "Winograd F(4x4,3x3): transforms + batched SGEMM", NATIVE, GPU, 5e-5, _gpu_winograd_refusal
    ),
    ConvAlgo("winograd", "the Winograd tile pycnn/cuda/select.py picks", CHOICE, GPU, refuse=_gpu_winograd_refusal),
]
_TABLES = {"cpu": _TABLE, "cuda": _GPU_TABLE, "cuda_emu": _GPU_TABLE}


def table(device: str = "cpu") -> dict:
    """name -> ConvAlgo on device."""
    return {a.name: a for a in _TABLES.get(device, [])}


def conv_algos(device: str = "cpu", kind: str | None = None) -> list:
    """The available entries on device (of one kind, or all), in table order."""
    return [
        a for a in _TABLES.get(device, []) if device in a.devices and (kind is None or a.kind == kind) and a.available()
    ]


def names(device: str = "cpu", kind: str | None = None) -> list:
    return [a.name for a in conv_algos(device, kind)]


def get(name, device: str = "cpu") -> ConvAlgo:
    """The entry for algo=name on device; ValueError naming the choices otherwise."""
    a = table(device).get(name) if isinstance(name, str) else None
    if a is None or device not in a.devices:
        raise ValueError(f"algo: expected one of {names(device)}, got {name!r}")
    if not a.available():
        raise ValueError(f"algo: {name!r} needs numba, which is not installed (pip install numba)")
    return a


def check(name: str, s: ConvShape, device: str = "cpu") -> ConvAlgo:
    """get(name), and a ValueError saying why it cannot run s."""
    a = get(name, device)
    why = a.refuse(s)
    if why:
        raise ValueError(f"algo: {name!r} {why}")
    return a


def candidates(s: ConvShape, device: str = "cpu") -> list:
    """The native algorithms that run s: what the autotuner times and the rule chooses among."""
    return [a.name for a in conv_algos(device, NATIVE) if a.supports(s)]


__all__ = [
    "ConvAlgo",
    "CONV",
    "GPU",
    "table",
    "NATIVE",
    "PYTHON",
    "CHOICE",
    "conv_algos",
    "names",
    "get",
    "check",
    "candidates",
    "geometry",
]
