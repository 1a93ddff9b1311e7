"""The tables Graph.summary() and Graph.profile() return: rows as data, str() as a table."""
from __future__ import annotations


def _shape(s):
    return "x".join(str(d) for d in s)


def _mb(b):
    return f"{b / 2**20:.1f} MiB"


class Summary:
    """rows: (node, op, output shape, parameters, FLOPs); peak_bytes: the plan's peak activation
    memory at this batch (each intermediate freed after its last consumer); total_bytes: what
    keeping every activation would take."""

    def __init__(self, name, batch, rows, peak_bytes, total_bytes):
        self.name, self.batch, self.rows = name, batch, rows
        self.peak_bytes, self.total_bytes = peak_bytes, total_bytes
        self.params = sum(r[3] for r in rows)
        self.flops = sum(r[4] for r in rows)

    def __str__(self):
        w = max([len(r[0]) for r in self.rows] + [4])
        lines = [f"{self.name}, batch {self.batch}",
                 f"{'node':<{w}}  {'op':<20} {'output':<18} {'params':>11} {'MFLOPs':>10}"]
        for name, op, out, n, fl in self.rows:
            lines.append(f"{name:<{w}}  {op:<20} {_shape(out):<18} {n:>11,} {fl / 1e6:>10.1f}")
        lines.append(f"total: {self.params:,} parameters ({_mb(4 * self.params)}), {self.flops / 1e9:.3f} GFLOPs; "
                     f"peak activations {_mb(self.peak_bytes)} (all activations {_mb(self.total_bytes)})")
        return "\n".join(lines)

    __repr__ = __str__


class Profile:
    """rows: (plan step = fused node names, op, output shape, median seconds, FLOPs, algorithm,
    live bytes after the step); total_s: median of whole runs; threads: kernel threads."""

    def __init__(self, name, batch, rows, total_s, threads):
        self.name, self.batch, self.rows, self.total_s, self.threads = name, batch, rows, total_s, threads

    def __str__(self):
        w = max([len(r[0]) for r in self.rows] + [4])
        step_sum = sum(r[3] for r in self.rows) or 1.0
        lines = [f"{self.name}, batch {self.batch}, {self.threads} threads: {self.total_s * 1e3:.2f} ms per run (median)",
                 f"{'step':<{w}}  {'op':<14} {'output':<16} {'ms':>8} {'%':>5} {'GFLOP/s':>8}  algorithm"]
        for name, op, out, t, fl, algo, _live in self.rows:
            gf = f"{fl / t / 1e9:8.1f}" if fl and t > 0 else f"{'':>8}"
            lines.append(f"{name:<{w}}  {op:<14} {_shape(out):<16} {t * 1e3:8.3f} {100 * t / step_sum:5.1f} {gf}  {algo}")
        return "\n".join(lines)

    __repr__ = __str__
