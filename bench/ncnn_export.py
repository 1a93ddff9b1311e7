"""Write a pycnn Graph as an ncnn network (.param text + .bin weights), so that ncnn runs the
very same network with the same weights (FP32) in the bench.

Written from the Graph's execution plan (batch norm already folded, ReLU fused into convs and
inner products as ncnn's activation_type=1). ncnn has no batch dimension: blobs are (C, H, W)
and a batch runs image by image. A blob read by several layers goes through a Split layer, as
ncnn requires. Operators without an ncnn counterpart here (Kim's CNN's embedding and max over
time) raise NotImplementedError, and the bench leaves ncnn out for that network.
Layer parameter ids: ncnn's docs/developer-guide/operation-param-weight-table.md.
"""

from __future__ import annotations

import os

import numpy as np


class NcnnExport:
    def __init__(self, graph):
        self.g = graph
        self.lines = []
        self.weights = []

    def layer(self, kind, name, ins, outs, params=""):
        self.lines.append(f"{kind:<20} {name:<30} {len(ins)} {len(outs)} {' '.join(ins + outs)} {params}".rstrip())

    def build(self):
        g = self.g
        plan = g.plan()
        shapes = g.infer_shapes()
        ((iname, ishape),) = g.inputs.items()
        if g.input_dtypes[iname] != "float32" or len(ishape) != 4:
            raise NotImplementedError("ncnn export: only one NCHW float input")
        readers = {}
        for _, _, ins, _, _, _ in plan:
            for t in ins:
                readers[t] = readers.get(t, 0) + 1
        self.layer("Input", "data", [], [iname], f"0={ishape[3]} 1={ishape[2]} 2={ishape[1]}")
        uses = {}

        def produce(t):  # after a blob is made: a Split when several layers read it
            n = readers.get(t, 0)
            if n > 1:
                outs = [f"{t}_split{i}" for i in range(n)]
                self.layer("Split", f"{t}_split", [t], outs)
                uses[t] = iter(outs)

        def use(t):
            return next(uses[t]) if t in uses else t

        produce(iname)
        for names, op, ins, out, a, p in plan:
            name = names[0]
            src = [use(t) for t in ins]
            act = " 9=1" if a.get("activation") == "relu" else ""
            if op == "conv2d":
                if a.get("max_map"):
                    raise NotImplementedError("ncnn export: a conv fused with a max over its maps")
                w = p["weight"]
                K, Cg, R, S = w.shape
                (sh, sw), (dh, dw), (pt, pl, pb, pr) = a["stride"], a["dilation"], a["padding"]
                bias = p.get("bias")
                kind = "Convolution" if a["groups"] == 1 else "ConvolutionDepthWise"
                extra = "" if a["groups"] == 1 else f" 7={a['groups']}"
                res = src[1:]  # a fused residual join: conv, then BinaryOp add (+ ReLU)
                conv_out = f"{out}_conv" if res else out
                self.layer(
                    kind,
                    name,
                    src[:1],
                    [conv_out],
                    f"0={K} 1={S} 11={R} 2={dw} 12={dh} 3={sw} 13={sh} "
                    f"4={pl} 15={pr} 14={pt} 16={pb} 5={int(bias is not None)} 6={w.size}{extra}"
                    f"{'' if res else act}",
                )
                self.weights += [np.uint32(0).tobytes(), w.astype(np.float32).tobytes()]
                if bias is not None:
                    self.weights.append(bias.astype(np.float32).tobytes())
                if res:
                    self.layer("BinaryOp", f"{name}_add", [conv_out, res[0]], [f"{out}_sum" if act else out], "0=0")
                    if act:
                        self.layer("ReLU", f"{name}_relu", [f"{out}_sum"], [out])
            elif op == "linear":
                w = p["weight"].T if a.get("transposed") else p["weight"]
                w = w * np.float32(a.get("scale", 1.0))
                bias = p.get("bias")
                self.layer(
                    "InnerProduct", name, src, [out], f"0={w.shape[0]} 1={int(bias is not None)} 2={w.size}{act}"
                )
                self.weights += [np.uint32(0).tobytes(), np.ascontiguousarray(w, np.float32).tobytes()]
                if bias is not None:
                    self.weights.append((bias * np.float32(a.get("bias_scale", 1.0))).astype(np.float32).tobytes())
            elif op in ("max_pool2d", "avg_pool2d"):
                (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
                # pad_mode 0 is Caffe's ceil rule (the last window starts inside the image, as
                # PyTorch's ceil_mode), 1 is floor
                mode = 0 if a["ceil_mode"] else 1
                inc = int(a.get("count_include_pad", False))
                self.layer(
                    "Pooling",
                    name,
                    src,
                    [out],
                    f"0={int(op == 'avg_pool2d')} 1={kw} 11={kh} 2={sw} 12={sh} "
                    f"3={pw} 14={pw} 13={ph} 15={ph} 5={mode} 6={inc}",
                )
            elif op == "global_avg_pool2d" or (op == "adaptive_avg_pool2d" and a["output_size"] == (1, 1)):
                self.layer("Pooling", name, src, [out], "0=1 4=1")
            elif op == "adaptive_avg_pool2d" and shapes[ins[0]][2:] == tuple(a["output_size"]):
                self.layer("Noop", name, src, [out])
            elif op == "local_response_norm":
                self.layer("LRN", name, src, [out], f"0=0 1={a['size']} 2={a['alpha']:e} 3={a['beta']:e} 4={a['k']:e}")
            elif op == "relu":
                self.layer("ReLU", name, src, [out])
            elif op == "add":
                self.layer("BinaryOp", name, src, [f"{out}_sum" if act else out], "0=0")
                if act:
                    self.layer("ReLU", f"{name}_relu", [f"{out}_sum"], [out])
            elif op == "concat":
                self.layer("Concat", name, src, [out], "0=0")
            elif op == "flatten":
                self.layer("Flatten", name, src, [out])
            elif op == "bias_add":
                b = p["bias"].reshape(-1)
                self.layer("MemoryData", f"{name}_data", [], [f"{name}_data"], f"0={b.size}")
                self.weights.append(b.astype(np.float32).tobytes())
                self.layer("BinaryOp", name, src + [f"{name}_data"], [out], "0=0")
            elif op == "softmax" and len(shapes[out]) == 2:
                self.layer("Softmax", name, src, [out], "0=0 1=1")
            elif op == "identity":
                self.layer("Noop", name, src, [out])
            else:
                raise NotImplementedError(f"ncnn export: no ncnn layer for {op!r} (node {name!r})")
            produce(out)
        blobs = set()
        for line in self.lines:
            f = line.split()
            n_in, n_out = int(f[2]), int(f[3])
            blobs.update(f[4 + n_in : 4 + n_in + n_out])
        return f"7767517\n{len(self.lines)} {len(blobs)}\n" + "\n".join(self.lines) + "\n", b"".join(self.weights)


class NcnnNet:
    """A Graph run by ncnn (FP32; peers.ncnn_fp32_net has the options), image by image."""

    def __init__(self, graph, threads, folder):
        from .peers import ncnn, ncnn_fp32_net

        if ncnn is None:
            raise ImportError("ncnn is not installed (pip install ncnn)")
        param, weights = NcnnExport(graph).build()
        os.makedirs(folder, exist_ok=True)
        self.param_path = os.path.join(folder, f"{graph.name}.param")
        bin_path = os.path.join(folder, f"{graph.name}.bin")
        with open(self.param_path, "w") as f:
            f.write(param)
        with open(bin_path, "wb") as f:
            f.write(weights)
        self.input = next(iter(graph.inputs))
        self.output = graph.outputs[0]
        self.net = ncnn_fp32_net(self.param_path, bin_path, threads)

    def __call__(self, x):
        from .peers import ncnn_run_images

        return ncnn_run_images(self.net, x, self.input, self.output).reshape(len(x), -1)
