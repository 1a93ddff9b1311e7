"""Kim's sentence CNN, the AlphaGo policy network and the ConvNetJS CIFAR-10 net."""

from collections.abc import Sequence

from ..graph import Graph
from ._builder import Builder, Weights


def kimcnn(
    *,
    vocab_size: int = 20000,
    embed_dim: int = 300,
    seq_len: int = 50,
    num_classes: int = 2,
    widths: Sequence[int] = (3, 4, 5),
    maps: int = 100,
    seed: int = 0,
    algo: str = "auto",
    weights: Weights = None,
) -> Graph:
    """Kim (2014): token ids (N, seq_len) -> embedding (N, L, D) -> one conv per filter width w
    (maps filters of w x D over the (L, D) plane, ReLU) -> max over time -> concat -> dropout
    -> FC to logits. Keys: embedding.weight, convs.i.weight/bias, fc.weight/bias.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    b = Builder("kimcnn", {"tokens": (None, seq_len)}, seed, input_dtypes={"tokens": "int64"})
    r = b.rng
    e = b.add("embedding", "embedding", "tokens", params={"weight": r.uniform(-0.25, 0.25, (vocab_size, embed_dim))})
    e = b.add("unsqueeze", "unsqueeze", e, dict(axes=(1,)))
    pooled = []
    for i, w in enumerate(widths):
        y = b.relu(f"relu{i}", b.conv(f"convs.{i}", e, maps, (w, embed_dim)))
        pooled.append(b.add(f"maxtime{i}", "reduce_max", y, dict(axes=(2, 3))))
    x = b.dropout("dropout", b.add("concat", "concat", pooled, dict(axis=1)))
    return b.graph(b.linear("fc", x, num_classes), algo=algo, weights=weights)


def alphago(*, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """AlphaGo's policy network as in the lecture: 19x19x48 board features -> conv1 192 5x5 pad 2
    -> conv2..conv12 192 3x3 pad 1 (ReLU after each) -> conv13 one 1x1 filter -> a bias per
    board point (key 'position_bias', shape (361,)) -> softmax over the 361 points.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    b = Builder("alphago", {"x": (None, 48, 19, 19)}, seed)
    x = b.relu("relu1", b.conv("conv1", "x", 192, 5, padding=2))
    for i in range(2, 13):
        x = b.relu(f"relu{i}", b.conv(f"conv{i}", x, 192, 3, padding=1))
    x = b.flatten("flatten", b.conv("conv13", x, 1, 1, bias=False))
    x = b.add(
        "position_bias", "bias_add", x, params={"bias": b.rng.uniform(-0.1, 0.1, 361)}, keys={"bias": "position_bias"}
    )
    return b.graph(b.add("softmax", "softmax", x, dict(axis=1)), algo=algo, weights=weights)


def convnetjs(*, num_classes: int = 10, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """The ConvNetJS CIFAR-10 demo: 32x32x3 -> conv 16 5x5 pad 2, ReLU, pool 2 -> conv 20 5x5
    pad 2, ReLU, pool 2 -> conv 20 5x5 pad 2, ReLU, pool 2 -> FC 10 -> softmax.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    b = Builder("convnetjs", {"x": (None, 3, 32, 32)}, seed)
    x = "x"
    for i, c in enumerate((16, 20, 20), 1):
        x = b.max_pool(f"pool{i}", b.relu(f"relu{i}", b.conv(f"conv{i}", x, c, 5, padding=2)), 2, 2)
    x = b.linear("fc", b.flatten("flatten", x), num_classes)
    return b.graph(b.add("softmax", "softmax", x, dict(axis=1)), algo=algo, weights=weights)
