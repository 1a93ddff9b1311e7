"""The device layer: arrays routed to a backend by where they live, the registry's devices, and
what a build without a GPU backend says."""

import numpy as np
import pytest

import pycnn
from pycnn import device


class FakeGpuArray:
    """Stands in for a CuPy array: it has __cuda_array_interface__ (nothing here reads it)."""

    def __init__(self, shape):
        self.shape = shape
        self.__cuda_array_interface__ = {"shape": shape, "typestr": "<f4", "data": (0, False), "version": 3}


class DLPackGpu:
    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0


class DLPackCpu:
    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU


def test_device_of():
    assert device.device_of(np.zeros(3)) == "cpu"
    assert device.device_of([1, 2]) == "cpu"
    assert device.device_of(FakeGpuArray((2,))) == "cuda"
    assert device.device_of(DLPackGpu()) == "cuda"
    assert device.device_of(DLPackCpu()) == "cpu"
    assert device.foreign(np.zeros(1), 3, None, [np.zeros(1), FakeGpuArray((1,))]) == "cuda"
    assert device.foreign(np.zeros(1), 3, "same") is None


def test_no_gpu_backend_in_this_build_is_said_plainly():
    x = FakeGpuArray((1, 3, 8, 8))
    for call in (
        lambda: pycnn.conv2d(x, np.zeros((4, 3, 3, 3), np.float32)),
        lambda: pycnn.relu(x),
        lambda: pycnn.max_pool2d(x, 2),
        lambda: pycnn.concat([x, x]),
        lambda: pycnn.softmax(x, dim=1),
    ):
        with pytest.raises(RuntimeError, match="no 'cuda' backend"):
            call()
    with pytest.raises(RuntimeError, match="no 'cuda' backend"):
        pycnn.algorithms("conv2d", device="cuda")
    with pytest.raises(ValueError, match="device"):
        pycnn.algorithms("conv2d", device="tpu")
    with pytest.raises(RuntimeError, match="no 'cuda' backend"):
        pycnn.models.lenet5().to("cuda")


def test_a_registered_backend_receives_the_call(monkeypatch):
    calls = []

    class Backend:
        def conv2d(self, *args, **kw):
            calls.append(("conv2d", args, kw))
            return "from the backend"

        def max_pool2d(self, *args, **kw):
            calls.append(("max_pool2d", args, kw))
            return "pooled"

    monkeypatch.setattr(device, "_backends", {"cuda": Backend()})
    x = FakeGpuArray((1, 3, 8, 8))
    w = np.zeros((4, 3, 3, 3), np.float32)
    assert pycnn.conv2d(x, w, padding=1, algo="auto") == "from the backend"
    assert pycnn.max_pool2d(x, 2, ceil_mode=True) == "pooled"
    assert calls[0][0] == "conv2d" and calls[0][2] == {"padding": 1, "algo": "auto"}
    assert calls[1] == ("max_pool2d", (x, 2), {"ceil_mode": True})
    assert device.available("cuda") and not device.available("cuda_emu")
    # NumPy arrays still run here
    assert pycnn.conv2d(np.zeros((1, 3, 8, 8), np.float32), w).shape == (1, 4, 6, 6)


def test_registry_knows_the_devices():
    for a in pycnn.registry.conv_algos("cpu"):
        assert "cpu" in a.devices
    gpu = ["auto", "direct", "im2col", "implicit_gemm", "winograd_f2", "winograd_f4", "winograd"]
    assert pycnn.registry.names("cuda") == pycnn.registry.names("cuda_emu") == gpu
    assert pycnn.algorithms("conv2d", device="cuda_emu") == gpu
    assert "direct_oc" not in pycnn.registry.table("cuda") and "implicit_gemm" not in pycnn.registry.CONV
    assert pycnn.algorithms() == pycnn.registry.names("cpu")
