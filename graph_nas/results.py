"""The one result type, from an evaluator (or the child trainer) to the store.

It lives at the package's top, below both `graph_nas.child` (the trainer
returns it) and `graph_nas.search` (the evaluators, the loop and the store
take it), so that neither imports the other for it;
`graph_nas.search.results` re-exports it.
"""

import dataclasses
from typing import Dict, Optional


@dataclasses.dataclass
class EvalResult:
  """What an evaluator says of one architecture.

  Attributes:
    status: "ok" or "failed".
    reward: the search reward (None when failed).
    metrics: JSON-able measurements (accuracy, cost, timings, ...).
    reason: why it failed ("" when ok).
    details: a traceback or other long diagnostics of a failure.
  """
  status: str
  reward: Optional[float] = None
  metrics: Dict = dataclasses.field(default_factory=dict)
  reason: str = ""
  details: str = ""

  @property
  def ok(self) -> bool:
    return self.status == "ok"

  def to_dict(self) -> Dict:
    return dataclasses.asdict(self)
