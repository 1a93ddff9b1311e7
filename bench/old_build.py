"""An older build of pycnn beside this checkout's, for the in-process A/B tools (build_ab,
conv_ab, linear_ab, sgemm_ab, depthwise_check --old, blocked_pool_check --old): its package copied into a
folder under another name (the package imports itself relatively, so the copy runs as that name)."""

import importlib
import sys

import pycnn


def builds(folder, name="pycnn_old", threads=2):
    """{'old': the package `name` in `folder`, 'new': pycnn}, both told the thread count."""
    sys.path.insert(0, folder)
    out = {"old": importlib.import_module(name), "new": pycnn}
    for P in out.values():
        P.set_num_threads(threads)
    return out
