"""One file per Graph: g.save(path) and pycnn.load(path) (= Graph.load); a leaf module, the
Graph passes itself in and builds itself from what read() returns.

The file is an uncompressed .npz (a zip of .npy arrays, read with allow_pickle=False, so loading
runs no code from the file): '__graph__' holds the structure as UTF-8 JSON (inputs, outputs,
nodes with their operator, attributes and state_dict keys, the conv algorithm) and 'p0', 'p1',
... the parameters. Prepared weights are not stored: they are made again when the Graph is
built from the file, for the CPU it is loaded on.
"""

from __future__ import annotations

import json
import os
from typing import Union

import numpy as np

from ._version import __version__

FORMAT = "pycnn.graph"
VERSION = 1


def _plain(v):
    """Attribute values as JSON: tuples become lists, NumPy scalars Python numbers."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"cannot store attribute value {v!r} ({type(v).__name__})")


def _tuples(v):
    """JSON lists back to the tuples attributes are made of."""
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v


def write(g, path: Union[str, os.PathLike]) -> None:
    """Write Graph g (structure and weights) to path (an .npz file; no suffix is added)."""
    arrays, nodes = {}, []
    for n in g.nodes:
        params = {}
        for role, a in n.params.items():
            params[role] = f"p{len(arrays)}"
            arrays[params[role]] = a
        nodes.append(
            {
                "name": n.name,
                "op": n.op,
                "inputs": list(n.inputs),
                "output": n.output,
                "attrs": _plain(n.attrs),
                "params": params,
                "keys": dict(n.keys),
            }
        )
    head = {
        "format": FORMAT,
        "version": VERSION,
        "pycnn": __version__,
        "name": g.name,
        "inputs": {k: list(v) for k, v in g.inputs.items()},
        "input_dtypes": g.input_dtypes,
        "outputs": list(g.outputs),
        "algo": g.algo,
        "ignore_keys": list(g.ignore_keys),
        "meta": _plain(g.meta),
        "nodes": nodes,
    }
    blob = np.frombuffer(json.dumps(head).encode(), np.uint8)
    with open(os.fspath(path), "wb") as f:
        np.savez(f, __graph__=blob, **arrays)


def read(path: Union[str, os.PathLike]) -> tuple[dict, list]:
    """(graph arguments, node arguments) of the file at path: Graph(**graph) over
    [Node(**n) for n in nodes] is the saved Graph."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file {path!r}")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"path: {path!r} is not a pycnn graph file (Graph.save writes one): {e}") from None
    with z:
        if not hasattr(z, "files") or "__graph__" not in z.files:
            raise ValueError(f"path: {path!r} is not a pycnn graph file (no '__graph__' entry; Graph.save writes one)")
        try:
            head = json.loads(z["__graph__"].tobytes().decode())
        except ValueError as e:
            raise ValueError(f"path: {path!r} has a corrupt graph description: {e}") from None
        if not isinstance(head, dict) or head.get("format") != FORMAT or not isinstance(head.get("version"), int):
            raise ValueError(f"path: {path!r} is not a pycnn graph file")
        if head["version"] > VERSION:
            raise ValueError(
                f"path: {path!r} was written in format version {head['version']} by pycnn "
                f"{head.get('pycnn')}; this pycnn ({__version__}) reads up to {VERSION}"
            )
        try:
            nodes = [
                dict(
                    name=n["name"],
                    op=n["op"],
                    inputs=n["inputs"],
                    output=n["output"],
                    attrs=_tuples(n["attrs"]),
                    params={role: z[key] for role, key in n["params"].items()},
                    keys=n["keys"],
                )
                for n in head["nodes"]
            ]
            graph = dict(
                inputs={k: tuple(v) for k, v in head["inputs"].items()},
                outputs=head["outputs"],
                name=head["name"],
                input_dtypes=head["input_dtypes"],
                algo=head["algo"],
                ignore_keys=tuple(head["ignore_keys"]),
                meta=_tuples(head["meta"]),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"path: {path!r} has a corrupt graph description ({type(e).__name__}: {e})") from None
    return graph, nodes


__all__ = ["write", "read"]
