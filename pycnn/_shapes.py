"""Shape arithmetic shared by the reference, the validation and the graph: one definition each."""
from __future__ import annotations



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


__all__ = ["pair", "conv_padding", "conv_output_size", "pool_output_size"]
