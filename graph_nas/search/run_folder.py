"""The files of a search's output folder, each named once.

A search (graph_nas.search) writes them; the reports, the DOT export, the
policy reader and the front ends read them by these names.
"""

DB_NAME = "trials.sqlite"            # every trial (graph_nas.search.store)
CHECKPOINT_NAME = "checkpoint.npz"   # the algorithm's whole state
LOCK_NAME = "search.lock"            # held while a search runs
BEST_NAME = "best_architecture.json"
TOP_NAME = "top_trials.md"
REWARDS_NAME = "rewards.png"
PARETO_NAME = "pareto.png"
TENSORBOARD_DIR = "tensorboard"
BEST_CHILD_DIR = "best_child"
