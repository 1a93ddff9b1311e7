"""A Graph's weights in and out: state_dict() and load_state_dict() with PyTorch's key names."""

from __future__ import annotations

import numpy as np

from .._weights import load_weights


def state_dict(nodes) -> dict:
    """{key: float32 array} with PyTorch's key names (copies)."""
    return {n.keys[r]: n.params[r].copy() for n in nodes for r in n.params}


def checked_weights(name, nodes, src, ignore_keys=(), strict=True) -> dict:
    """{(node, role): float32 array} from src (a dict of arrays or tensors, an .npz path or a PyTorch
    state_dict file), after checking every key; ValueError listing every missing, unexpected or
    mis-shaped key (the first ten of each kind), or the common prefix the keys carry."""
    arrays = load_weights(src)
    owners = {n.keys[r]: (n, r) for n in nodes for r in n.params}
    ignored = [
        k for k in arrays if k not in owners and (k.endswith("num_batches_tracked") or k.startswith(ignore_keys))
    ]
    missing = sorted(k for k in owners if k not in arrays)
    unexpected = sorted(k for k in arrays if k not in owners and k not in ignored)
    prefix = common_prefix(unexpected, owners)
    if prefix:
        raise ValueError(
            f"load_state_dict into {name}: the keys carry the prefix {prefix!r} that this graph's keys do not "
            f"(a checkpoint of nn.DataParallel / DistributedDataParallel, or of a wrapping module?); strip it "
            f"first: {{k.removeprefix({prefix!r}): v for k, v in state_dict.items()}}"
        )
    problems = []
    if strict and missing:
        problems.append(f"missing keys: {key_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {key_list(unexpected)}")
    new = {}
    for k, a in arrays.items():
        if k not in owners:
            continue
        n, r = owners[k]
        a = np.asarray(a)
        if a.dtype.kind not in "fiu":
            problems.append(f"{k}: dtype {a.dtype} is not numeric")
        elif a.shape != n.params[r].shape:
            problems.append(f"{k}: expected shape {n.params[r].shape}, got {a.shape}")
        else:
            new[(n.name, r)] = np.ascontiguousarray(a, np.float32)
    if problems:
        raise ValueError(f"load_state_dict into {name}: " + "; ".join(problems))
    return new


def common_prefix(keys, owners) -> str:
    """The dotted prefix ('module.') that all of keys carry and whose removal makes them this
    graph's keys (owners), or ''."""
    if not keys:
        return ""
    first = keys[0]
    for i, ch in enumerate(first):
        if ch != ".":
            continue
        p = first[: i + 1]
        if all(k.startswith(p) for k in keys) and sum(k[len(p) :] in owners for k in keys) * 2 >= len(keys):
            return p
    return ""


def key_list(keys, show=10) -> str:
    """A readable list of keys: the first `show`, then how many more."""
    head = ", ".join(repr(k) for k in keys[:show])
    return f"[{head}]" if len(keys) <= show else f"[{head}, ... and {len(keys) - show} more] ({len(keys)} in all)"


__all__ = ["state_dict", "checked_weights", "common_prefix", "key_list"]
