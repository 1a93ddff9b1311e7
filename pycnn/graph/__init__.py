"""pycnn.Graph, split by job:
  core.py     the Graph: nodes as written, shapes, the plan, the run loop, persistence
  node.py     Node: one operator as written (validated once)
  step.py     Step: one kernel call of the plan
  passes.py   the plan as a list of small rewrite passes (fusions, prepared weights, conv banks)
  binding.py  the plan bound per input shape (layouts, concat elision, the arena)
  weights.py  state_dict / load_state_dict
  report.py   summary() and profile()
The interface every step's kernel offers is pycnn/step_kernel.py's StepKernel.
"""

from .core import Graph
from .node import Node
from .step import Step

__all__ = ["Graph", "Node", "Step"]
