"""End-to-end check: train LeNet-5 in PyTorch on scikit-learn's digits, run it in pycnn.

The 1797 8x8 digit images are upsampled 4x (each pixel to a 4x4 block) to LeNet's 32x32 input
and scaled to [0, 1]; 25% are held out (stratified, fixed seed). PyTorch trains the network of
pycnn/models/torch_reference.py (same layer names as pycnn.models.lenet5) with Adam; the weights are saved
as a PyTorch state_dict file; pycnn loads that file into pycnn.models.lenet5() and must give the
same predictions and the same held-out accuracy.

    python examples/lenet_digits.py [--epochs 30] [--out lenet_digits.pth]

Needs torch and scikit-learn besides pycnn (pip install ".[test]" has both).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def load_digits_32(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.kron(d.images, np.ones((4, 4))).astype(np.float32)[:, None] / 16.0  # (1797, 1, 32, 32)
    return train_test_split(x, d.target.astype(np.int64), test_size=0.25, random_state=seed, stratify=d.target)


def train_torch(x, y, epochs=30, seed=0, batch=64):
    import torch

    from pycnn.models.torch_reference import lenet5

    torch.manual_seed(seed)
    m = lenet5(10)
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(xt[idx]), yt[idx]).backward()
            opt.step()
    return m.eval()


def run(epochs=30, out=None, seed=0, verbose=True):
    """Train, save, load into pycnn, compare. Returns a dict of the numbers."""
    import torch

    import pycnn

    x_tr, x_te, y_tr, y_te = load_digits_32(seed)
    t0 = time.perf_counter()
    m = train_torch(x_tr, y_tr, epochs, seed)
    t_train = time.perf_counter() - t0
    path = out or os.path.join(tempfile.mkdtemp(prefix="pycnn-digits-"), "lenet_digits.pth")
    torch.save(m.state_dict(), path)
    with torch.no_grad():
        logits_t = m(torch.from_numpy(x_te)).numpy()
    g = pycnn.models.lenet5()
    g.load_state_dict(path)
    logits_p = g(x_te)
    pred_t, pred_p = logits_t.argmax(1), logits_p.argmax(1)
    res = {
        "epochs": epochs,
        "train_s": t_train,
        "weights": path,
        "n_test": len(y_te),
        "acc_torch": float((pred_t == y_te).mean()),
        "acc_pycnn": float((pred_p == y_te).mean()),
        "agree": int((pred_t == pred_p).sum()),
        "max_logit_diff": float(np.abs(logits_t - logits_p).max()),
    }
    if verbose:
        print(f"trained LeNet-5 on {len(y_tr)} digits for {epochs} epochs in {t_train:.1f} s; weights: {path}")
        print(
            f"held-out accuracy: PyTorch {res['acc_torch']:.4f}, pycnn {res['acc_pycnn']:.4f}; "
            f"predictions agree on {res['agree']}/{res['n_test']}; max |logit difference| {res['max_logit_diff']:.2e}"
        )
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default=None, help="where to save the PyTorch state_dict (.pth)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    r = run(a.epochs, a.out, a.seed)
    return 0 if r["agree"] == r["n_test"] and r["acc_pycnn"] == r["acc_torch"] else 1


if __name__ == "__main__":
    sys.exit(main())
