"""The one result type, from an evaluator (or the child trainer) to the store."""

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
