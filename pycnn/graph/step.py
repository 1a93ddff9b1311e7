"""Step: one kernel call of a Graph's plan, covering one node or several fused ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..step_kernel import StepKernel


@dataclass
class Step:
    """names: the nodes it covers (fused), in order; op: the first node's operator; inputs and
    output: tensor names; attrs, params: the effective attributes and weights (batch norm folded,
    fused activation, max_map); fn: its StepKernel once made (pycnn/graph/passes.make_kernels);
    free: tensors dead after it; parts: a conv bank's steps as they were (passes.fuse_conv_banks)."""

    names: list
    op: str
    inputs: list
    output: str
    attrs: dict
    params: dict = field(default_factory=dict)
    fn: Optional[StepKernel] = None
    free: list = field(default_factory=list)
    parts: list = field(default_factory=list)


__all__ = ["Step"]
