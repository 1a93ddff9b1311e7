"""Shape arithmetic shared by the reference, the validation and the graph: one definition each,
and ConvShape, the validated geometry of one convolution (a leaf module: NumPy-free)."""

from __future__ import annotations

from ._validate import as_int, as_pair, nhwc_hint


def pair(v, name="value"):
    """int or 2-sequence -> (int, int)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv_padding(padding, kernel, dilation, stride):
    """Normalize conv padding to (top, left, bottom, right).

    Accepts an int, (ph, pw), (top, left, bottom, right), 'valid', or 'same' (stride 1 only;
    the odd extra pixel goes to the bottom/right, as in PyTorch and ONNX SAME_UPPER).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding: 'same' needs stride 1, got stride={stride}")
            th = dilation[0] * (kernel[0] - 1)
            tw = dilation[1] * (kernel[1] - 1)
            return th // 2, tw // 2, th - th // 2, tw - tw // 2
        raise ValueError(f"padding: expected an int, a pair, 4 values, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(int(p) for p in padding)
    ph, pw = pair(padding, "padding")
    return ph, pw, ph, pw


def conv_output_size(L, k, s, p0, p1, d):
    return (L + p0 + p1 - d * (k - 1) - 1) // s + 1


def pool_output_size(L, k, s, p, ceil_mode):
    """PyTorch's pooling output size, including its rule that with ceil_mode the last window
    must start inside the image or the left padding, never in the right padding."""
    num = L + 2 * p - k
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


class ConvShape:
    """Validated geometry of one conv2d call (what select.py, the kernels and the bench read).
    x is (N, C, H, W), the weight (K, C/groups, R, S); N may be 0 (an empty batch)."""

    __slots__ = ("N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation", "groups", "Ho", "Wo")

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        N, C, H, W = x_shape
        K, Cg, R, S = w_shape
        self.stride = as_pair(stride, "stride", 1)
        self.dilation = as_pair(dilation, "dilation", 1)
        self.groups = as_int(groups, "groups", 1)
        if Cg * self.groups != C:
            hint = nhwc_hint(tuple(x_shape), Cg * self.groups)
            if hint:
                raise ValueError(
                    f"input: expected {Cg * self.groups} channels in dimension 1 for weight "
                    f"{tuple(w_shape)}, got shape {tuple(x_shape)}{hint}"
                )
        if C % self.groups or K % self.groups:
            raise ValueError(
                f"groups: {groups} must divide both the input channels ({C}) and "
                f"the output channels ({K}); input {tuple(x_shape)}, weight {tuple(w_shape)}"
            )
        if Cg * self.groups != C:
            raise ValueError(
                f"weight: expected shape[1] == input channels / groups = {C // self.groups}, "
                f"got weight {tuple(w_shape)} for input {tuple(x_shape)} with groups={groups}"
            )
        if K == 0 or Cg == 0 or R == 0 or S == 0:
            raise ValueError(f"weight: every dimension must be >= 1, got {tuple(w_shape)}")
        if H == 0 or W == 0:
            raise ValueError(f"input: spatial sizes must be >= 1, got {tuple(x_shape)}")
        if isinstance(padding, (tuple, list)) and len(padding) == 4:
            pad = tuple(as_int(p, "padding", 0) for p in padding)
        elif isinstance(padding, str):
            pad = conv_padding(padding, (R, S), self.dilation, self.stride)
        else:
            ph, pw = as_pair(padding, "padding", 0)
            pad = (ph, pw, ph, pw)
        self.pad = pad
        pt, pl, pb, pr = pad
        self.Ho = conv_output_size(H, R, self.stride[0], pt, pb, self.dilation[0])
        self.Wo = conv_output_size(W, S, self.stride[1], pl, pr, self.dilation[1])
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(
                f"weight: kernel {R}x{S} (dilation {self.dilation}) is larger than the padded input "
                f"{H + pt + pb}x{W + pl + pr}; input {tuple(x_shape)}, weight {tuple(w_shape)}, padding {padding!r}"
            )
        self.N, self.C, self.H, self.W, self.K, self.R, self.S = N, C, H, W, K, R, S

    @property
    def flops(self) -> float:
        return 2.0 * self.N * self.K * self.Ho * self.Wo * (self.C // self.groups) * self.R * self.S

    @property
    def out_shape(self) -> tuple:
        return (self.N, self.K, self.Ho, self.Wo)

    def key(self) -> tuple:
        return (
            self.N,
            self.C,
            self.H,
            self.W,
            self.K,
            self.R,
            self.S,
            self.stride,
            self.pad,
            self.dilation,
            self.groups,
        )


__all__ = ["pair", "conv_padding", "conv_output_size", "pool_output_size", "ConvShape"]
