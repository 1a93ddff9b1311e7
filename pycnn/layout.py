"""Channel-blocked activations between a Graph's steps (NCHW16c).

Layout. A blocked tensor of logical shape (N, C, H, W) is stored as (N, C/16, H, W, 16): the 16
channels of a pixel are one 64-byte run. It only ever lives inside a Graph's bound plan, between
steps that read and write it; every graph input and output, and every tensor any other op
reads, is NCHW.

Why. A 1x1 convolution on NCHW needs its input packed per call (the SGEMM packs B panels,
16-20% of the layer at 56x56) or read with a stride of a whole plane per channel (direct_oc in
place, worse at 28x28 and 56x56). On a blocked input direct_oc's broadcasts for 16 channels come
from a tile's few whole lines, nothing is packed, and a blocked output needs no transpose
(docs/performance.md, direct_oc).

Which tensors: the largest set (found by dropping tensors until nothing changes, plan()) where,
for each blocked tensor,
  * its producer writes it: a conv with groups 1 and 16 | K that runs direct_oc (any geometry),
    Winograd without a fused residual, or any 1x1 unpadded conv (it then runs direct_oc); a
    depthwise conv with groups == C == K and 16 | C (then run by depthwise_c16), a grouped conv
    grouped_c16 runs (2, 4 or 8 channels per group, 16 | C); an x * gate
    whose x is blocked; a max or average pool, a LayerNorm over channels or a batch norm whose
    input is blocked; a channel concat whose
    inputs all are; or any other op (or a pool on an NCHW input) followed by a reorder in its
    step, when a conv reading the tensor as x writes a blocked output itself (so the layout
    pays for the copy);
  * every reader reads it: 1x1 unpadded convs with groups 1, 16 | C and >= 16 outputs (any
    stride; as x, or as the residual added in their epilogue, in either layout), convs with
    any window that run direct_oc (groups 1, 16 | C; as x only, and only the output of a conv
    whose own x is blocked without them or is a graph input, repeated while that grows:
    DenseNet's and Inception's 1x1 -> 3x3, Inception's stem of 3x3s; or a channel concat of
    conv outputs written blocked at no cost: Inception's Mixed_5d -> Mixed_6a's 3x3/2), depthwise and
    grouped convs as above (x or residual), those pools, LayerNorms over channels, batch norms, channel
    concats and squeeze-and-excitation's x * gate (N, C, 1, 1) whose own outputs are blocked,
    and global average pools and ONNX means over H and W (their (N, C, 1, 1) or (N, C) output
    stays NCHW);
  * a reader takes it as its main input (the reason to block it) or its producer is a conv
    whose x is blocked (then writing it blocked costs nothing), and it is not a graph output.
In ResNet-50/101/152 that is everything from the stem conv to the last bottleneck: the residual
stream, each bottleneck's 3x3 output (conv1 1x1: blocked x, NCHW y for the 3x3 -> 3x3 Winograd or
direct_oc: blocked y -> conv3 1x1: blocked x, y and residual). In GoogLeNet every Inception
concat but the last (all branch widths are multiples of 16) with its pools, so the 1x1 branch
convs read blocked x. ResNet-18/34, AlexNet, AlphaGo and the small networks have no reader and
are unchanged. In MobileNet V2 each inverted residual block whose widths are multiples of 16
(expand 1x1 -> depthwise 3x3 -> project 1x1, and the residual stream between blocks). In
ConvNeXt (its blocks on NCHW, pycnn/io/onnx_fuse.py) each block: depthwise 7x7 -> LayerNorm
over channels -> 1x1 -> 1x1 with the residual. In DenseNet the dense blocks' concats, the batch
norms reading them and the transitions' average pools (the 1x1s read blocked x).

Only when the Graph's algorithm is "auto" or "direct_oc": a Graph told to run one algorithm
(im2col, winograd, ...) runs exactly that everywhere. ENABLED = False turns this off (A/B and
tests).
"""

from __future__ import annotations

from . import registry
from ._shapes import ConvShape
from .prepared import PreparedConv

ENABLED = True
WINDOWED_READERS = True  # convs with a window read a blocked x where they run direct_oc (_windowed_reader)
# ... also a channel concat of conv outputs that write the layout natively (Inception's Mixed_5d,
# read by Mixed_6a's 3x3/2: its concat is then made blocked instead of reordered)
WINDOWED_CONCATS = True
# Steps that read and write either layout alike when their input is blocked: pools, LayerNorm
# over channels (ConvNeXt) and a batch norm that was not folded (DenseNet's BN + ReLU before
# each conv).
PER_CHANNEL_OPS = ("max_pool2d", "avg_pool2d", "channel_norm", "batch_norm")

X_BLOCKED, Y_BLOCKED, RES_BLOCKED = 1, 2, 4  # as kDirectOc*Blocked in kernels/cpu/conv2d.h
MEAN_Y = 16  # kDirectOcMeanY: a direct_oc call returning its maps' means (pycnn/graph/fuse_mean.py)
REORDER = "reorder"  # the algorithm of a non-conv step whose output is reordered to blocked


def blocked_shape(shape):
    """The stored shape of a blocked tensor of logical shape (N, C, H, W): (N, C/16, H, W, 16)."""
    return (shape[0], shape[1] // 16) + tuple(shape[2:]) + (16,)


def _conv_shape(step, shapes):
    c = step.fn  # a PreparedConv
    return ConvShape(tuple(shapes[step.inputs[0]]), c.weight.shape, c.stride, c.padding, c.dilation, c.groups)


# The algorithm that runs a conv step reading a blocked x or residual, and any conv whose own
# algorithm cannot write its blocked output: the registry says which geometries it takes.
BLOCKED_RUNNER = "direct_oc"
# The same for depthwise convs (groups == C == K), whichever of the depthwise kernels auto chose.
DEPTHWISE_RUNNER = "depthwise_c16"
DEPTHWISE_ALGOS = ("depthwise", DEPTHWISE_RUNNER)
# Grouped convs with 2, 4 or 8 channels per group (C == K) that auto gives it: it reads and
# writes blocked tensors as depthwise_c16 does.
GROUPED_RUNNER = "grouped_c16"


def _runner(s, algo, bits):
    """The algorithm that runs conv s with these layout bits: its own where the registry says it
    takes them, else DEPTHWISE_RUNNER (depthwise convs) or BLOCKED_RUNNER where that does, else
    None."""
    for a in (algo, DEPTHWISE_RUNNER if algo in DEPTHWISE_ALGOS else BLOCKED_RUNNER):
        if registry.CONV[a].layout_ok(s, bits):
            return a
    return None


def _depthwise_reader(s, algo):
    """A depthwise conv (groups == C == K, 16 | C): DEPTHWISE_RUNNER reads and writes blocked x, y
    and residual alike (MobileNet's expand 1x1 -> depthwise -> project 1x1 chain); so does
    GROUPED_RUNNER for the grouped convs it runs (ResNeXt's 1x1 -> grouped 3x3 -> 1x1)."""
    if algo == GROUPED_RUNNER:
        return registry.CONV[GROUPED_RUNNER].layout_ok(s, X_BLOCKED)
    return algo in DEPTHWISE_ALGOS and registry.CONV[DEPTHWISE_RUNNER].layout_ok(s, X_BLOCKED)


def _windowed_reader(s, algo):
    """A conv with any window that runs BLOCKED_RUNNER anyway (auto chose direct_oc for it: the
    3x3s after DenseNet's and Inception's 1x1s): it reads a blocked x as fast as an NCHW one, and
    the conv before it then stores its blocked sums as they are, no transpose. As x only (a
    residual read blocked would pull ResNet-18's Winograd stream into the layout)."""
    return WINDOWED_READERS and algo == BLOCKED_RUNNER and registry.CONV[BLOCKED_RUNNER].layout_ok(s, X_BLOCKED)


def _pointwise_reader(s):
    """A conv that can read a blocked x (and a blocked residual, which has the output's channels):
    the 1x1 unpadded ones BLOCKED_RUNNER takes. Not for fewer than 16 outputs (AlphaGo's 192 ->
    1 head), where direct_oc computes one vector of mostly zero weights."""
    return s.K >= 16 and s.R == s.S == 1 and _runner(s, BLOCKED_RUNNER, X_BLOCKED) is not None


def plan(steps, shapes, outputs, graph_algo):
    """Per step index: (layout bits, algorithm) for the steps that touch a blocked tensor; the
    others are absent. steps: the Graph's plan steps (op, inputs, output, fn, attrs, params);
    shapes: logical shapes of every tensor; outputs: graph outputs.

    The blocked set is the largest one that satisfies the rules (module docstring): start from
    every 4-D tensor with 16 | C and drop, until nothing changes, each tensor whose producer
    cannot write it or one of whose readers cannot read it (a max pool or concat reads blocked
    only if its own output stays blocked), or that no reader wants."""
    if not ENABLED or graph_algo not in ("auto", "direct_oc"):
        return {}
    info = {}  # step index -> (ConvShape, resolved algorithm), bound native convs only
    for i, st in enumerate(steps):
        if st.op != "conv2d" or st.attrs.get("max_map") or not isinstance(st.fn, PreparedConv):
            continue
        algo = st.fn.algo_for(shapes[st.inputs[0]])
        if not registry.CONV[algo].prepared:
            continue  # Python-side algorithms (reference, numba) keep NCHW
        info[i] = (_conv_shape(st, shapes), algo)
    consumers, producer = {}, {}
    for i, st in enumerate(steps):
        producer[st.output] = i
        for pos, t in enumerate(st.inputs):
            consumers.setdefault(t, []).append((i, pos))
    outs = set(outputs)

    def c16(t):
        s = shapes.get(t)
        return s is not None and len(s) == 4 and s[1] % 16 == 0

    def is_pool(i):  # a max pool or a per-channel op (PER_CHANNEL_OPS): blocked in -> blocked out
        st = steps[i]
        return st.op in PER_CHANNEL_OPS and len(shapes[st.inputs[0]]) == 4 and c16(st.inputs[0])

    def is_concat(i):
        st = steps[i]
        return st.op == "concat" and st.attrs["axis"] % 4 == 1 and all(c16(t) for t in st.inputs)

    def is_gap(i):  # a global average pool (or a mean over H and W): reads a blocked x, writes NCHW
        st = steps[i]
        return global_mean(st) and c16(st.inputs[0])

    def gate_pos(i):  # squeeze-and-excitation's x * gate (N, C, 1, 1): the position of x, else None
        return gate_input(steps[i], shapes)

    def conv_writes(i):
        # its own algorithm writes the blocked y (Winograd only without a fused residual), or
        # BLOCKED_RUNNER does, for the 1x1 unpadded convs or when it runs the conv already
        s, algo = info[i]
        if _depthwise_reader(s, algo):
            return True
        lay = registry.CONV[algo].layout_ok
        own = lay(s, Y_BLOCKED) and (len(steps[i].inputs) == 1 or lay(s, Y_BLOCKED | RES_BLOCKED))
        one_by_one = s.R == 1 and s.S == 1 and s.pad == (0, 0, 0, 0) and s.dilation == (1, 1)
        return own or (one_by_one and registry.CONV[BLOCKED_RUNNER].layout_ok(s, Y_BLOCKED))

    def writes(i, B):  # step i can write its output blocked itself
        if i in info:
            return conv_writes(i)
        if is_pool(i):
            return steps[i].inputs[0] in B
        if is_concat(i):
            return all(t in B for t in steps[i].inputs)
        g = gate_pos(i)
        return g is not None and steps[i].inputs[g] in B

    def reads(i, pos, B):  # step i can read its input pos blocked
        if i in info:
            s, algo = info[i]
            return ((_pointwise_reader(s) or _depthwise_reader(s, algo)) and pos <= 1) or (
                pos == 0 and steps[i].inputs[0] in windowed and _windowed_reader(s, algo)
            )
        # A pool or concat works on blocked tensors only from and to blocked ones: a concat
        # with an NCHW input is made in NCHW (then reordered), so none of its inputs may be
        # blocked.
        if is_pool(i) or is_concat(i):
            return steps[i].output in B and all(t in B for t in steps[i].inputs)
        if is_gap(i):
            return True
        return pos == gate_pos(i) and steps[i].output in B  # a gated x: blocked in, blocked out

    def keeps(t, B):
        i = producer.get(t)
        cs = consumers.get(t, [])
        if i is None or not cs or t in outs or is_gap(i) or not all(reads(j, pos, B) for j, pos in cs):
            return False
        # A reason to block it: a reader taking it as its main input (not a global average pool,
        # which reads either layout as fast), or a conv producer whose own input is blocked
        # (writing blocked then costs nothing).
        wanted = any((pos == 0 or j not in info) and not is_gap(j) for j, pos in cs)
        if not (wanted or (i in info and steps[i].inputs[0] in B)):
            return False
        if writes(i, B):
            return True
        # Else a reorder after the producer (not a conv): only when a conv reading t as x writes
        # a blocked output itself, so the layout pays for the reorder (ResNet's stem pool feeding
        # layer1.0's downsample; GoogLeNet's stem pool -> 1x1 -> 3x3 does not).
        return steps[i].op != "conv2d" and any(pos == 0 and j in info and steps[j].output in B for j, pos in cs)

    def solve():
        B = {st.output for st in steps if c16(st.output)}
        changed = True
        while changed:
            changed = False
            for t in sorted(B):
                if not keeps(t, B):
                    B.discard(t)
                    changed = True
        return B

    windowed = set()  # tensors a conv with a window may read blocked (_windowed_reader)
    B = solve()
    while WINDOWED_READERS:
        # Only the outputs of convs whose x is blocked without them, or is a graph input (writing
        # theirs blocked then costs nothing): so no tensor is reordered, and no concat copied,
        # for their sake. Repeated while it grows: a chain of windowed convs after the stem
        # (Inception's 3x3s) goes blocked one conv per round.
        more = {
            st.output
            for st in steps
            if producer.get(st.output) in info and (st.inputs[0] in B or st.inputs[0] not in producer)
        }
        if WINDOWED_CONCATS:  # a concat of conv outputs written blocked at no cost
            more |= {
                st.output
                for i, st in enumerate(steps)
                if is_concat(i) and all(producer.get(t) in info and conv_writes(producer[t]) for t in st.inputs)
            }
        if more <= windowed:
            break
        windowed |= more
        B = solve()

    result = {}
    for i, st in enumerate(steps):
        xb = bool(st.inputs) and st.inputs[0] in B
        yb = st.output in B
        if i in info:
            rb = len(st.inputs) > 1 and st.inputs[1] in B
            if xb or yb or rb:
                bits = (X_BLOCKED if xb else 0) | (Y_BLOCKED if yb else 0) | (RES_BLOCKED if rb else 0)
                result[i] = (bits, _runner(info[i][0], info[i][1], bits))
        elif yb and writes(i, B):
            result[i] = (X_BLOCKED | Y_BLOCKED, st.op)  # a max pool, concat or gate on blocked tensors
        elif xb and is_gap(i):
            result[i] = (X_BLOCKED, st.op)
        elif yb:
            result[i] = (Y_BLOCKED, REORDER)
    return result


def hw_axes(axes) -> bool:
    """Whether axes (negative ones counted from the end) are exactly H and W of a 4-D tensor."""
    return sorted(ax % 4 for ax in axes) == [2, 3]


def global_mean(step) -> bool:
    """Whether the step averages each map over all of H and W: a global average pool, an adaptive
    one to 1 x 1 (the lecture ResNets' and GoogLeNet's) or a ReduceMean over H and W."""
    if step.op == "adaptive_avg_pool2d":
        return tuple(step.attrs["output_size"]) == (1, 1)
    return step.op == "global_avg_pool2d" or spatial_mean(step)


def spatial_mean(step) -> bool:
    """Whether the step is ONNX ReduceMean over the H and W axes of a 4-D tensor (MNASNet's global
    average pool), which reads a channel-blocked x as a global average pool does."""
    return step.op == "reduce_mean" and hw_axes(step.attrs["axes"])


def gate_input(step, shapes):
    """For a step x * g with g (N, C, 1, 1) and x the output's shape (N, C, H, W), 16 | C
    (squeeze-and-excitation's gate, read and written blocked): the position of x among its
    inputs; else None."""
    pos = product_x_position(step, shapes)
    return None if pos is None or shapes[step.output][1] % 16 else pos


def product_x_position(step, shapes):
    """For a step x * g with g (N, C, 1, 1) and x the output's shape (N, C, H, W) (squeeze-and-
    excitation's product, any C): the position of x among its inputs; else None."""
    if step.op != "binary" or step.attrs.get("fn") != "mul" or len(step.inputs) != 2:
        return None
    out = tuple(shapes[step.output])
    if len(out) != 4 or out[2:] == (1, 1):
        return None
    a, b = (tuple(shapes[t]) for t in step.inputs)
    gate = out[:2] + (1, 1)
    if a == out and b == gate:
        return 0
    if b == out and a == gate:
        return 1
    return None


def describe(algo, bits, op=None):
    """The algorithm column of Graph.profile for a step with these layout bits."""
    if algo == REORDER:
        return f"{op} [16c: y, reordered]"
    if not bits:
        return algo
    names = [n for b, n in ((X_BLOCKED, "x"), (Y_BLOCKED, "y"), (RES_BLOCKED, "res")) if bits & b]
    return f"{algo} [16c: {','.join(names)}]"
