"""Batch inference over many inputs: one Graph per worker, on a Ray cluster or a local process pool.

Ray (pip install 'pycnn[ray]'): `GraphPredictor` is a class for `ray.data.Dataset.map_batches`;
Ray makes one per actor, so each actor builds (or unpickles) its Graph once, prepares its weights
once and sets its OpenMP threads to the CPUs Ray gave it; every batch after that is one g(x).
`ray_map_batches(ds, graph, ...)` sets that up, `classify_images(paths, graph, ...)` reads a
directory of images with `ray.data.read_images` and adds the top classes.

Without Ray: `pool_map(graph, x, processes=2)` runs the batches of x over a local
multiprocessing pool (spawned workers, one Graph each), returning what g(x) would, batch by batch.

A graph is given as a Graph (pickled to each worker: structure and weights, prepared again there),
a zoo name ('resnet50'), the path of a Graph.save file or an .onnx file, or a function of no
arguments that returns a Graph (built in each worker: nothing large crosses the network).

Results are exactly those of one process running the same batches with the same thread count: a
worker runs the same kernels on the same batch shapes (the algorithm choice depends on the batch
size, so keep batch_size fixed when comparing).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import Any, Optional, Union

import numpy as np

from . import models, ops
from ._optional import require
from ._validate import as_int
from .graph import Graph
from .io import load_onnx

GraphSource = Union[Graph, str, "os.PathLike[str]", Callable[[], Graph]]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_graph(source: GraphSource) -> Graph:
    """The Graph a source names: a Graph itself, a zoo name, a Graph.save or .onnx file, or a
    function returning a Graph."""
    if isinstance(source, Graph):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isfile(path):
            return load_onnx(path) if path.endswith(".onnx") else Graph.load(path)
        if path in models.names():
            return models.get(path)
        raise ValueError(f"graph: {path!r} is neither a file nor a zoo name ({', '.join(models.names())})")
    if callable(source):
        g = source()
        if not isinstance(g, Graph):
            raise TypeError(f"graph: the function returned {type(g).__name__}, not a pycnn.Graph")
        return g
    raise TypeError(f"graph: expected a Graph, a zoo name, a file path or a function, got {type(source).__name__}")


def _ray_cpus() -> Optional[int]:
    """The CPUs Ray assigned to this actor, or None outside a Ray worker."""
    try:
        ray = require("ray", "GraphPredictor")
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - the driver, or an older Ray without assigned resources
        return None
    return max(1, int(cpus)) if cpus else None


class GraphPredictor:
    """Runs a Graph on the batches of a Ray Dataset (map_batches with batch_format='numpy'):
    batch[input_column] (N, ...) -> batch[output_column] (N, ...), the other columns kept.

    num_threads: the OpenMP threads of this worker (default: the CPUs Ray assigned to the actor,
    else pycnn's default). top_k > 0 also adds '<output_column>_top' (N, top_k) class indices
    and '<output_column>_top_score' (their softmax scores)."""

    def __init__(
        self,
        graph: GraphSource,
        *,
        input_column: str = "data",
        output_column: str = "logits",
        num_threads: Optional[int] = None,
        top_k: int = 0,
    ):
        threads = num_threads if num_threads is not None else _ray_cpus()
        if threads is not None:
            ops.set_num_threads(threads)
        self.graph = resolve_graph(graph)
        self.input_column, self.output_column = input_column, output_column
        self.top_k = as_int(top_k, "top_k", 0)

    def __call__(self, batch: dict) -> dict:
        if self.input_column not in batch:
            raise KeyError(f"input_column: the batch has no column {self.input_column!r}; it has {sorted(batch)}")
        x = np.asarray(batch[self.input_column])
        if x.dtype == object:  # a column of equal-shaped arrays Ray could not stack
            x = np.stack(list(x))
        y = self.graph(x)
        out = dict(batch)
        out[self.output_column] = y
        if self.top_k:
            p = ops.softmax(y.reshape(len(y), -1), dim=1)
            top = np.argsort(-p, axis=1, kind="stable")[:, : self.top_k]
            out[f"{self.output_column}_top"] = top
            out[f"{self.output_column}_top_score"] = np.take_along_axis(p, top, axis=1)
        return out


def ray_map_batches(
    ds: Any,
    graph: GraphSource,
    *,
    num_actors: int = 2,
    cpus_per_actor: int = 1,
    batch_size: int = 32,
    input_column: str = "data",
    output_column: str = "logits",
    top_k: int = 0,
) -> Any:
    """ds.map_batches with one GraphPredictor per actor: num_actors actors of cpus_per_actor CPUs
    each (and as many OpenMP threads), batches of batch_size rows. Returns the (lazy) Dataset."""
    num_actors = as_int(num_actors, "num_actors", 1)
    cpus_per_actor = as_int(cpus_per_actor, "cpus_per_actor", 1)
    batch_size = as_int(batch_size, "batch_size", 1)
    ray_data = require("ray.data", "pycnn.batch_inference.ray_map_batches")
    return ds.map_batches(
        GraphPredictor,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray_data.ActorPoolStrategy(size=num_actors),
        num_cpus=cpus_per_actor,
        fn_constructor_kwargs=dict(
            graph=graph, input_column=input_column, output_column=output_column, num_threads=cpus_per_actor, top_k=top_k
        ),
    )


def images_to_nchw(
    batch: dict, *, column: str = "image", out: str = "data", mean=IMAGENET_MEAN, std=IMAGENET_STD
) -> dict:
    """A batch of RGB images (N, H, W, 3) uint8, as ray.data.read_images gives them, to the
    network input (N, 3, H, W) float32, scaled to [0, 1] and normalized per channel."""
    img = np.asarray(batch[column])
    if img.dtype == object:
        img = np.stack(list(img))
    if img.ndim != 4 or img.shape[3] != 3:
        raise ValueError(f"{column}: expected RGB images (N, H, W, 3), got shape {img.shape}")
    x = img.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    res = {k: v for k, v in batch.items() if k != column}
    res[out] = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return res


def classify_images(
    paths: Union[str, list],
    graph: GraphSource,
    *,
    size: tuple = (224, 224),
    num_actors: int = 2,
    cpus_per_actor: int = 1,
    batch_size: int = 32,
    top_k: int = 5,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> Any:
    """A Ray Dataset of the images under paths (a directory, file or list; png/jpg/...), each
    resized to size, normalized and classified by graph: columns 'path', 'logits', 'logits_top'
    and 'logits_top_score'. Needs ray[data] and pillow (pip install 'pycnn[ray]')."""
    ray_data = require("ray.data", "pycnn.batch_inference.classify_images")
    ds = ray_data.read_images(paths, size=tuple(size), mode="RGB", include_paths=True)
    ds = ds.map_batches(images_to_nchw, batch_format="numpy", fn_kwargs=dict(mean=mean, std=std))
    return ray_map_batches(
        ds, graph, num_actors=num_actors, cpus_per_actor=cpus_per_actor, batch_size=batch_size, top_k=top_k
    ).drop_columns(["data"])


# ----------------------------------------------------------------------------- local pool
_worker_graph: Optional[Graph] = None


def _init_worker(graph: GraphSource, threads: int) -> None:
    global _worker_graph
    ops.set_num_threads(threads)
    _worker_graph = resolve_graph(graph)


def _run_batch(x: np.ndarray) -> Any:
    return _worker_graph(x)


def pool_map(
    graph: GraphSource, x: Any, *, processes: int = 2, batch_size: int = 32, num_threads: Optional[int] = None
) -> Any:
    """g(x) computed batch by batch (batch_size rows each) over a pool of `processes` spawned
    worker processes, each with its own Graph and num_threads OpenMP threads (default: the
    cores divided among the workers). x: an array, or {input name: array} for a graph with
    several inputs. Returns the outputs concatenated along the batch, as g would give them."""
    processes = as_int(processes, "processes", 1)
    batch_size = as_int(batch_size, "batch_size", 1)
    threads = num_threads if num_threads is not None else max(1, (os.cpu_count() or 1) // processes)
    threads = as_int(threads, "num_threads", 1, ops.MAX_THREADS)
    if isinstance(x, dict):
        n = len(next(iter(x.values())))
        chunks = [{k: v[i : i + batch_size] for k, v in x.items()} for i in range(0, n, batch_size)]
    else:
        x = np.asarray(x)
        if x.ndim == 0:
            raise ValueError("x: expected a batch (N, ...), got a scalar")
        chunks = [x[i : i + batch_size] for i in range(0, len(x), batch_size)]
    if not chunks:
        raise ValueError("x: empty batch")
    # spawn, not fork: a forked child of a process whose OpenMP threads have run can hang in libgomp.
    with multiprocessing.get_context("spawn").Pool(
        processes, initializer=_init_worker, initargs=(graph, threads)
    ) as pool:
        parts = pool.map(_run_batch, chunks, chunksize=1)
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


__all__ = [
    "GraphPredictor",
    "ray_map_batches",
    "classify_images",
    "images_to_nchw",
    "pool_map",
    "resolve_graph",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]
