"""The command-line front ends: the launcher, the toy experiment runner,
and the launcher's projection of a search's time. `python -m
graph_nas.launch`, `python -m graph_nas.experiment` and `python -m
graph_nas.dot` keep their names (small modules that run these)."""
