"""A small space with a branch and a loop, and a toy reward that fails on
some configurations: the report tests' search (tests/test_report_configs.py).

The walk picks an optimizer, then that optimizer's learning rate (a branch:
each optimizer has its own learning-rate vertex), then 1 to 3 layers with a
width each (a loop, bounded by max_steps: a walk that would add a fourth
layer is cut off unfinished, and fails).
"""

from graph_nas import api

WIDTHS = (32, 64, 128)
RATES = {"sgd": (0.1, 0.01), "adam": (0.001, 0.0003)}
FAIL_REASON = "loss is NaN (sgd diverges at learning rate 0.1)"


def builder() -> api.SpaceBuilder:
  # optimizer, learning rate, then per layer: add, width, more (3 layers: 11
  # steps; the 11th, at "more" after 3 layers, can only stop or be cut off).
  b = api.SpaceBuilder("optimizer_layers", start="optimizer", max_steps=11)
  opt = b.vertex("optimizer", "Which optimizer?")
  for name in RATES:
    opt.action(name, f"{name}_lr", key="optimizer", value=name)
  for name, rates in RATES.items():
    b.vertex(f"{name}_lr", f"The learning rate of {name}.").action(
        "learning_rate", "layer", key="learning_rate", values=list(rates))
  b.vertex("layer").action("add", "width", key="layers", op="APPEND")
  b.vertex("width").action("width", "more", key="layers[-1].width",
                           values=list(WIDTHS))
  b.vertex("more").action("another", "layer").action("done", "end")
  b.vertex("end")
  return b


def reward(config):
  """Adam at 0.001 with wide layers is best; sgd at 0.1 fails (a quarter
  of random walks: the first 20 trials hold one but with odds of 1 in
  300)."""
  layers = config.get("layers", [])
  if config["optimizer"] == "sgd" and config["learning_rate"] == 0.1:
    raise FloatingPointError(FAIL_REASON)
  score = 0.5 if config["optimizer"] == "adam" else 0.3
  score += 0.2 if config["learning_rate"] in (0.001, 0.01) else 0.0
  score += 0.1 * sum(l["width"] for l in layers) / (128 * len(layers))
  return score + 0.05 * len(layers)
