"""Node: one operator of a Graph, as written (one per PyTorch module or ONNX operator)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..layers import OPS, normalize_attrs


@dataclass
class Node:
    """One operator. inputs/output are tensor names; params maps a role ('weight', 'bias', ...)
    to a float32 array; keys maps a role to its state_dict key (default 'name.role')."""

    name: str
    op: str
    inputs: list
    output: str = ""
    attrs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"node {self.name!r}: unknown op {self.op!r}; known: {sorted(OPS)}")
        self.output = self.output or self.name
        self.inputs = list(self.inputs)
        spec = OPS[self.op]
        if spec.n_inputs is not None and len(self.inputs) != spec.n_inputs:
            raise ValueError(f"node {self.name!r} ({self.op}): expected {spec.n_inputs} inputs, got {self.inputs}")
        if not self.inputs:
            raise ValueError(f"node {self.name!r} ({self.op}): needs at least one input")
        for role in self.params:
            if role not in spec.params:
                raise ValueError(f"node {self.name!r} ({self.op}): unknown parameter {role!r}; expected {spec.params}")
        for role in spec.params:
            if role not in self.params and role not in spec.optional:
                raise ValueError(f"node {self.name!r} ({self.op}): missing parameter {role!r}")
        self.params = {r: np.ascontiguousarray(v, np.float32) for r, v in self.params.items()}
        self.keys = {r: self.keys.get(r, f"{self.name}.{r}") for r in self.params}
        try:
            self.attrs = normalize_attrs(self.op, self.attrs, self.params)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"node {self.name!r} ({self.op}): bad attributes {self.attrs}: {e}") from None


__all__ = ["Node"]
