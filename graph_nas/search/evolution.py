"""Regularized evolution's population and mutation: their home is
graph_nas.search.algorithms.evolution (beside the algorithm); re-exported
here."""

from graph_nas.search.algorithms.evolution import (
    ATTEMPTS, LOOP_MUTATION_PROB, Population, change_action, change_loop,
    local_step, mutate, neighbours, ordered_numeric, turns, walk_on)

__all__ = ["ATTEMPTS", "LOOP_MUTATION_PROB", "Population", "change_action",
           "change_loop", "local_step", "mutate", "neighbours",
           "ordered_numeric", "turns", "walk_on"]
