"""Classify a batch of images with a zoo network on a local Ray cluster, with 1 and 2 actors, and
compare with one process and with a local process pool (pycnn.batch_inference).

    pip install 'pycnn[ray]'
    python examples/ray_batch_inference.py [--model resnet18] [--images 256] [--batch 16] [--cpus 2]
    python examples/ray_batch_inference.py --dir path/to/images      # real image files instead

Random images stand in for a data set (the zoo's weights are random too: the classes mean
nothing; pass --weights for trained ones). Every result is checked against one process running
the same batches; the times are wall-clock for the whole job, actor start-up (building the Graph
and preparing its weights) included, so short jobs favour fewer workers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pycnn
from pycnn import batch_inference as bi


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18", choices=pycnn.models.names())
    ap.add_argument("--weights", help="state_dict for the model (.npz, .pt, .pth)")
    ap.add_argument("--images", type=int, default=256, help="random images to classify")
    ap.add_argument("--dir", help="classify the images in this directory instead")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    a = ap.parse_args()

    import ray

    g = pycnn.models.get(a.model, weights=a.weights)
    shape = next(iter(g.inputs.values()))[1:]
    ray.init(num_cpus=a.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False

    if a.dir:
        t0 = time.perf_counter()
        rows = bi.classify_images(a.dir, g, size=shape[1:], num_actors=a.cpus, batch_size=a.batch).take_all()
        dt = time.perf_counter() - t0
        for r in rows[:10]:
            print(f"{r['path']}: classes {list(r['logits_top'])}")
        print(f"{len(rows)} images in {dt:.2f} s ({len(rows) / dt:.1f} images/s, {a.cpus} actors)")
        return

    n = a.images - a.images % a.batch
    x = np.random.default_rng(0).standard_normal((n,) + shape).astype(np.float32)
    print(f"{a.model}: {n} images {shape}, batches of {a.batch}, {pycnn._C.cpu_isa()}")

    pycnn.set_num_threads(1)
    t0 = time.perf_counter()
    ref = np.concatenate([g(x[i : i + a.batch]) for i in range(0, n, a.batch)])
    dt = time.perf_counter() - t0
    print(f"  one process, 1 thread:       {dt:6.2f} s  {n / dt:7.1f} images/s")
    pycnn.set_num_threads(a.cpus)
    t0 = time.perf_counter()
    for i in range(0, n, a.batch):
        g(x[i : i + a.batch])
    dt = time.perf_counter() - t0
    print(f"  one process, {a.cpus} threads:      {dt:6.2f} s  {n / dt:7.1f} images/s")

    t0 = time.perf_counter()
    y = bi.pool_map(a.model if not a.weights else g, x, processes=a.cpus, batch_size=a.batch, num_threads=1)
    dt = time.perf_counter() - t0
    assert np.array_equal(y, ref)
    print(f"  process pool, {a.cpus} x 1 thread: {dt:6.2f} s  {n / dt:7.1f} images/s  (equal to one process)")

    for actors in range(1, a.cpus + 1):
        # one block per batch, so that the actors' batches are the single-process run's
        ds = ray.data.from_items([{"id": i, "data": x[i]} for i in range(n)], override_num_blocks=n // a.batch)
        t0 = time.perf_counter()
        rows = bi.ray_map_batches(
            ds, a.model if not a.weights else g, num_actors=actors, cpus_per_actor=1, batch_size=a.batch
        ).take_all()
        dt = time.perf_counter() - t0
        got = np.stack([r["logits"] for r in sorted(rows, key=lambda r: int(r["id"]))])
        assert np.array_equal(got, ref), "Ray result differs from one process"
        print(f"  Ray, {actors} actor(s) x 1 CPU:    {dt:6.2f} s  {n / dt:7.1f} images/s  (equal to one process)")
    ray.shutdown()


if __name__ == "__main__":
    main()
