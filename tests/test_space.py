"""Tests of graph_nas.space: loading, validation, decoding, linear twin."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from graph_nas import space as space_lib
from graph_nas.errors import GraphNasError, SpaceWarning
from tests.conftest import PROTOS, ROOT, require_tool

# Seconds a subprocess of these tests may take (generous: 2 loaded cores).
SUBPROCESS_TIMEOUT_S = 180

ALL_SPACES = sorted(PROTOS.glob("*.textproto"))


@pytest.mark.parametrize("path", ALL_SPACES, ids=lambda p: p.name)
def test_every_shipped_space_loads_and_random_walks_decode(path):
  s = space_lib.load(str(path))
  rng = np.random.default_rng(0)
  for _ in range(20):
    walk = s.sample_random(rng)
    assert len(walk.actions) <= s.max_steps
    config = s.decode(walk.actions)
    json.dumps(config)  # JSON-able
  twin = s.linear_twin()
  for _ in range(5):
    walk = twin.sample_random(rng)
    assert len(walk.actions) == twin.max_steps  # a fixed-length chain
    json.dumps(twin.decode(walk.actions))


def test_index_arrays_of_select_optimizer():
  s = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  assert len(s.vertex_names) == 18
  opt = s.vertex_index["optimizer"]
  assert s.start == opt
  assert s.num_actions[opt] == 4
  assert s.num_actions[s.vertex_index["adam_p3"]] == 100
  assert s.max_actions == 100
  assert s.terminal[s.vertex_index["end"]]
  assert s.next_vertex.shape == (18, 100)
  assert s.next_vertex[opt, 2] == s.vertex_index["adam_p1"]
  assert s.next_vertex[opt, 4] == -1  # padding
  assert s.num_global_actions == 4 + 16 * 100
  # Global action ids are unique per (vertex, action) pair.
  ids = {int(s.action_offset[v]) + a for v in range(18)
         for a in range(s.num_actions[v])}
  assert len(ids) == s.num_global_actions
  assert s.max_steps == 5 and not s.is_cyclic


def test_decode_select_optimizer_walk():
  s = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  # adam, then p1..p4 = 50, 1, 100, 7 (action index = value - 1).
  config = s.decode([1, 49, 0, 99, 6])
  assert config == {"optimizer": "adam", "p1": 50, "p2": 1, "p3": 100,
                    "p4": 7}
  assert s.action_names([1, 49, 0, 99, 6])[:2] == ["optimizer:adam",
                                                   "adam_p1:p1=50"]
  with pytest.raises(GraphNasError, match="non-terminal"):
    s.decode([1, 49])
  with pytest.raises(GraphNasError, match="out of range"):
    s.decode([2])


def test_stack_layers_loop_and_truncation():
  s = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  assert s.is_cyclic and s.max_steps == 100
  assert s.decode([1]) == {"num_layers": 0}
  assert s.decode([0] * 7 + [1]) == {"num_layers": 7}
  walk = s.check_walk([0] * 100)  # a valid walk, cut short
  assert walk.truncated
  with pytest.raises(GraphNasError, match="vertex 'stack': max_steps 100 "
                     "stopped the walk here after 100 steps, before a "
                     "terminal vertex"):
    s.decode([0] * 100)
  rng = np.random.default_rng(1)
  lengths = [len(s.sample_random(rng).actions) for _ in range(2000)]
  # Uniform choice: P(stop) = 1/2 at every step, mean walk length 2.
  assert 1.8 < np.mean(lengths) < 2.2


def _same_decoding(twin, hand, walks):
  assert len(twin.slots) == hand.max_steps
  chain = [hand.start]
  for _ in range(hand.max_steps):
    chain.append(int(hand.next_vertex[chain[-1], 0]))
  np.testing.assert_array_equal(
      [twin.num_actions[v] for v in range(len(twin.slots))],
      [hand.num_actions[v] for v in chain[:-1]])
  for actions in walks:
    assert twin.decode(actions) == hand.decode(actions), actions


def test_linear_twin_of_stack_layers_equals_handwritten():
  graph = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  hand = space_lib.load(str(PROTOS / "stack_layers_linear.textproto"))
  twin = graph.linear_twin()
  assert len(twin.slots) == 20  # 2L
  rng = np.random.default_rng(0)
  walks = [list(rng.integers(0, 2, 20)) for _ in range(500)]
  walks += [[1] * 20, [0] * 10 + [1] * 10, [0] * 3 + [1] + [0] * 16]
  walks = [w for w in walks if w != [0] * 20]
  _same_decoding(twin, hand, walks)
  assert hand.decode([0] * 10 + [1] * 10) == {"num_layers": 10}
  assert hand.decode([0] * 3 + [1] + [0] * 16) == {"num_layers": 3}
  # The one walk where they differ: 20 adds end the handwritten chain, but
  # the twin's replay is still at "stack" (a 21st decision to make) when its
  # unroll runs out.
  assert hand.decode([0] * 20) == {"num_layers": 20}
  with pytest.raises(GraphNasError, match="vertex 'stack': linear_unroll 20 "
                     "stopped the walk here after 20 steps"):
    twin.decode([0] * 20)


@pytest.mark.parametrize("b", [2, 4])
def test_linear_twin_of_select_optimizer_equals_handwritten(b):
  graph = space_lib.load(str(PROTOS / f"select_optimizer_b{b}.textproto"))
  hand = space_lib.load(
      str(PROTOS / f"select_optimizer_b{b}_linear.textproto"))
  twin = graph.linear_twin()
  assert len(twin.slots) == 1 + 4 * b
  rng = np.random.default_rng(0)
  walks = [[int(rng.integers(b))] + list(rng.integers(0, 100, 4 * b))
           for _ in range(500)]
  _same_decoding(twin, hand, walks)
  # The linear form decodes to the graph's schema: only the picked
  # optimizer's hyperparameters.
  w = walks[0]
  cfg = hand.decode(w)
  assert sorted(cfg) == ["optimizer", "p1", "p2", "p3", "p4"]
  graph_walk = twin.to_graph_actions(w)
  assert graph.decode(graph_walk) == cfg


def test_linear_twin_of_a_mixed_cyclic_branching_space():
  text = """
  start: "a" max_steps: 4
  vertices { name: "a"
    actions { name: "x" target: "b" key: "path" op: APPEND value { string_value: "x" } }
    actions { name: "y" target: "a" key: "path" op: APPEND value { string_value: "y" } }
    actions { name: "stop" target: "end" } }
  vertices { name: "b"
    actions { name: "k" target: "a" key: "k" int_values: [1, 2] } }
  vertices { name: "end" }
  """
  # A walk of 4 steps may end at "b", half way round the loop a -> b -> a,
  # at any max_steps (the self loop at "a" shifts the turns by one step).
  with pytest.warns(SpaceWarning, match=r"max_steps 4 can stop a walk in the "
                    r"middle of a loop's turn, at 'b' in the loop entered at "
                    r"'a': .*naming max_steps\)$"):
    graph = space_lib.loads(text)
  twin = graph.linear_twin()
  # Every graph walk has a linear walk that decodes to the same config.
  for acts in space_lib.exact_walks(graph):
    # Build the linear walk: for each slot pick the graph action if the
    # replay is there, else 0.
    linear, it = [], iter(acts)
    cur, t, pending = graph.start, 0, list(acts)
    for v, step in twin.slots:
      if pending and v == cur and step == t:
        a = pending.pop(0)
        linear.append(a)
        cur, t = int(graph.next_vertex[cur, a]), t + 1
      else:
        linear.append(0)
    del it
    assert not pending, (acts, linear)  # every graph step found its slot
    if graph.check_walk(acts).truncated:  # both refuse it
      for space, walk in ((twin, linear), (graph, acts)):
        with pytest.raises(GraphNasError, match="max_steps 4 stopped"):
          space.decode(walk)
    else:
      assert twin.decode(linear) == graph.decode(acts)


def test_appended_layers_decode_to_a_list():
  text = """
  start: "more" max_steps: 20
  vertices { name: "more"
    actions { name: "layer" target: "kernel" key: "layers" op: APPEND }
    actions { name: "done" target: "end" } }
  vertices { name: "kernel"
    actions { name: "k" target: "more" key: "layers[-1].kernel" int_values: [3, 5] } }
  vertices { name: "end" }
  """
  s = space_lib.loads(text)
  assert s.decode([0, 1, 0, 0, 1]) == {"layers": [{"kernel": 5},
                                                  {"kernel": 3}]}
  assert s.decode([1]) == {}


# ------------------------------------------------------------ bad input
GOOD_TAIL = 'vertices { name: "end" }'
BAD_INPUTS = [
    ("unparseable", 'start: "a" vertices { name: "a" ', "cannot parse"),
    ("unknown field", 'start: "a" colour: 3 vertices { name: "a" }',
     "colour"),
    ("missing start", 'vertices { name: "a" }', "no start vertex"),
    ("unknown start", 'start: "b" vertices { name: "a" }',
     "start vertex 'b' is not a vertex"),
    ("edge to unknown vertex",
     'start: "a" vertices { name: "a" actions { name: "go" target: "nowhere" } }',
     "vertex 'a', action 'go': target 'nowhere' is not a vertex"),
    ("duplicate vertex",
     'start: "a" vertices { name: "a" } vertices { name: "a" }',
     "vertex 'a': duplicate vertex name"),
    ("duplicate action",
     'start: "a" vertices { name: "a" actions { name: "go" target: "end" } '
     'actions { name: "go" target: "end" } } ' + GOOD_TAIL,
     "vertex 'a', action 'go': duplicate action name"),
    ("no terminal reachable",
     'start: "a" max_steps: 5 vertices { name: "a" actions { name: "x" target: "b" } '
     'actions { name: "y" target: "end" } } '
     'vertices { name: "b" actions { name: "loop" target: "b" } } ' + GOOD_TAIL,
     "vertex 'b': no terminal vertex is reachable"),
    ("empty range",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" key: "p" '
     'int_range { start: 5 stop: 1 } } } ' + GOOD_TAIL,
     "vertex 'a', action 'p': int_range is empty"),
    ("huge range",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" key: "p" '
     'int_range { start: 0 stop: 1000000000000 } } } ' + GOOD_TAIL,
     "more than the limit of 100000 actions per vertex"),
    ("cycle without max_steps",
     'start: "a" vertices { name: "a" actions { name: "again" target: "a" } '
     'actions { name: "stop" target: "end" } } ' + GOOD_TAIL,
     "has a cycle: set a positive max_steps"),
    ("two value sources",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" key: "p" '
     'int_values: [1] string_values: ["x"] } } ' + GOOD_TAIL,
     "at most one of"),
    ("bad key",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "a..b" value { int_value: 1 } } } ' + GOOD_TAIL,
     "bad config key"),
    ("empty value",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" value { } } } ' + GOOD_TAIL, "value {} is empty"),
    ("ADD of a string",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" op: ADD value { string_value: "x" } } } ' + GOOD_TAIL,
     "ADD needs a numeric value"),
    ("no vertices", 'start: "a"', "no vertices"),
    ("empty value list",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" int_values: [] } } ' + GOOD_TAIL,
     "vertex 'a', action 'p': sets 'p' but gives no value"),
    ("negative max_steps",
     'start: "a" max_steps: -3 vertices { name: "a" }', "must not be negative"),
    # -- every field validated at load time (issue 15)
    ("op outside its enum",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" op: 7 value { int_value: 1 } } } ' + GOOD_TAIL,
     "vertex 'a', action 'p': op 7 is not one of SET, APPEND, ADD"),
    ("nan value",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" value { float_value: nan } } } ' + GOOD_TAIL,
     "vertex 'a', action 'p': value nan is not a finite number"),
    ("inf in float_values",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" float_values: [0.5, inf] } } ' + GOOD_TAIL,
     "vertex 'a', action 'p': value inf is not a finite number"),
    ("-inf default",
     'start: "a" defaults { key: "x" value { float_value: -inf } } '
     'vertices { name: "a" }',
     "defaults: 'x': value -inf is not a finite number"),
    ("nan in active_if",
     'start: "a" vertices { name: "a" active_if { key: "x" equals { '
     'float_value: nan } } actions { name: "go" target: "end" } } '
     + GOOD_TAIL, "vertex 'a': active_if on 'x': value nan is not a finite"),
    ("default given twice",
     'start: "a"\ndefaults { key: "x" value { int_value: 1 } }\n'
     'defaults { key: "x" value { int_value: 2 } }\nvertices { name: "a" }',
     ":3: defaults: 'x' is given twice (also on line 2)"),
    ("default inside another default",
     'start: "a" defaults { key: "x" value { int_value: 1 } } '
     'defaults { key: "x.y" value { int_value: 2 } } vertices { name: "a" }',
     "defaults: 'x.y' is a field of 'x', which defaults also set to a value"),
    ("default indexing a list",
     'start: "a" defaults { key: "x[0]" value { int_value: 1 } } '
     'vertices { name: "a" }', "defaults: 'x[0]': a default cannot index"),
    ("expanded edge names collide",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" int_values: [1, 2] } actions { name: "p=1" target: "end" } } '
     + GOOD_TAIL,
     "vertex 'a', action 'p=1': action 'p' and action 'p=1' both make an "
     "edge named 'p=1'"),
    ("action name reused with other values",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" int_values: [1] } actions { name: "p" target: "end" '
     'key: "p" int_values: [2] } } ' + GOOD_TAIL,
     "vertex 'a', action 'p': duplicate action name within the vertex "
     "(also action #0)"),
    ("value given twice",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" string_values: ["x", "y", "x"] } } ' + GOOD_TAIL,
     "vertex 'a', action 'p': value x is given twice (two edges named "
     "'p=x')"),
    ("control character in a name",
     'start: "a" vertices { name: "a" actions { name: "p\\nq" '
     'target: "end" } } ' + GOOD_TAIL,
     "vertex 'a', action '#0': action name 'p\\nq' has a control character"),
    ("control character in a string value",
     'start: "a" vertices { name: "a" actions { name: "p" target: "end" '
     'key: "p" string_values: ["ok", "t\\tab"] } } ' + GOOD_TAIL,
     "value string 't\\tab' has a control character"),
    ("list that no walk appends to",
     'start: "a" vertices { name: "a" actions { name: "k" target: "end" '
     'key: "layers[-1].k" value { int_value: 3 } } } ' + GOOD_TAIL,
     "vertex 'a', action 'k': config key 'layers[-1].k' uses the list "
     "'layers', but no walk appends to 'layers' before this vertex"),
    ("list appended only after its use",
     'start: "a" vertices { name: "a" actions { name: "k" target: "b" '
     'key: "layers[-1].k" value { int_value: 3 } } } vertices { name: "b" '
     'actions { name: "add" target: "end" key: "layers" op: APPEND } } '
     + GOOD_TAIL, "action 'k': config key 'layers[-1].k' uses the list"),
    ("index after index",
     'start: "a" vertices { name: "a" actions { name: "l" target: "b" '
     'key: "l" op: APPEND } } vertices { name: "b" actions { name: "k" '
     'target: "end" key: "l[0][1]" value { int_value: 1 } } } ' + GOOD_TAIL,
     "vertex 'b', action 'k': config key 'l[0][1]': an element of a list "
     "is a dict or a value, never a list"),
    ("APPEND to a list element",
     'start: "a" vertices { name: "a" actions { name: "l" target: "b" '
     'key: "l" op: APPEND } } vertices { name: "b" actions { name: "k" '
     'target: "end" key: "l[-1]" op: APPEND } } ' + GOOD_TAIL,
     "vertex 'b', action 'k': APPEND to 'l[-1]', an element of a list"),
    ("key through a default value",
     'start: "a" defaults { key: "opt" value { string_value: "sgd" } } '
     'vertices { name: "a" actions { name: "lr" target: "end" '
     'key: "opt.lr" float_values: [0.1] } } ' + GOOD_TAIL,
     "config key 'opt.lr' goes through 'opt', which defaults set to 'sgd'"),
    ("APPEND to a default value",
     'start: "a" defaults { key: "layers" value { int_value: 0 } } '
     'vertices { name: "a" actions { name: "l" target: "end" '
     'key: "layers" op: APPEND } } ' + GOOD_TAIL,
     "APPEND to 'layers', which defaults set to 0 (not a list"),
    ("list where defaults make a dict",
     'start: "a" defaults { key: "net.width" value { int_value: 8 } } '
     'vertices { name: "a" actions { name: "l" target: "end" '
     'key: "net" op: APPEND } } ' + GOOD_TAIL,
     "APPEND to 'net', which defaults set to a dict of fields"),
    ("ADD to a string default",
     'start: "a" defaults { key: "n" value { string_value: "none" } } '
     'vertices { name: "a" actions { name: "inc" target: "end" key: "n" '
     'op: ADD value { int_value: 1 } } } ' + GOOD_TAIL,
     "ADD to 'n', which defaults set to 'none' and no action sets to a "
     "number"),
    ("target with a control character",
     'start: "a" vertices { name: "a" actions { name: "go" '
     'target: "x\\ny" } } ' + GOOD_TAIL,
     "target 'x\\ny' is not a vertex of this space"),
]


@pytest.mark.parametrize("name,text,expected", BAD_INPUTS,
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_error(name, text, expected, tmp_path):
  path = tmp_path / "bad.textproto"
  path.write_text(text)
  with pytest.raises(GraphNasError) as info:
    space_lib.load(str(path))
  msg = str(info.value)
  assert expected in msg, msg
  assert msg.startswith(str(path)), msg  # names the file
  assert "\n" not in msg.strip()
  del name


def test_error_names_the_line():
  text = 'start: "a"\nvertices {\n  name: "a"\n  actions { name: "go" target: "x" }\n}\n'
  with pytest.raises(GraphNasError) as info:
    space_lib.loads(text, source="f.textproto")
  assert str(info.value).startswith("f.textproto:4: vertex 'a', action 'go'")
  with pytest.raises(GraphNasError) as info:
    space_lib.loads('start: "a"\n\nvertices { nme: "a" }', source="g")
  assert str(info.value).startswith("g:3:")


def test_error_lines_count_vertices_and_actions_not_names():
  # The first `name: "b"` is an action's; the error is in vertex b's second
  # action, on line 7.
  text = ('start: "a"\n'
          'vertices { name: "a"\n'
          '  actions { name: "b" target: "b" } }\n'
          'vertices {\n'
          '  name: "b"\n'
          '  actions { name: "x" target: "end" }\n'
          '  actions { name: "y" target: "end" op: 9 } }\n'
          'vertices { name: "end" }\n')
  with pytest.raises(GraphNasError) as info:
    space_lib.loads(text, source="f")
  assert str(info.value).startswith("f:7: vertex 'b', action 'y': op 9")


CLASHING_EDGES = ('start: "a"\n'
                  'vertices {\n'
                  '  name: "a"\n'
                  '  actions { name: "k" target: "end" key: "k"\n'
                  '            int_range { start: 1 stop: 3 } }\n'
                  '  # "k=2" is also the name of k\'s second edge\n'
                  '  actions { name: "k=2" target: "end" key: "other"\n'
                  '            value { int_value: 9 } }\n'
                  '}\n'
                  'vertices { name: "end" }\n')


def test_two_actions_expanding_to_one_edge_name_are_refused(tmp_path):
  path = tmp_path / "clash.textproto"
  path.write_text(CLASHING_EDGES)
  with pytest.raises(GraphNasError) as info:
    space_lib.load(str(path))
  assert str(info.value) == (
      f"{path}:7: vertex 'a', action 'k=2': action 'k' (line 4) and action "
      "'k=2' (line 7) both make an edge named 'k=2' (an action's values "
      "expand to edges named \"name=value\"); rename one of the two actions")
  assert info.value.vertex == "a" and info.value.action == "k=2"
  assert info.value.source == str(path) and info.value.line == 7


@pytest.mark.parametrize("first,second,edge", [
    # A string value holding "=": "p" + "q=1" and "p=q" + "1".
    ('name: "p" key: "x" string_values: ["q=1", "r"]',
     'name: "p=q" key: "y" int_values: [1, 2]', "p=q=1"),
    # A float list and a one-value action named like its edge.
    ('name: "lr" key: "lr" float_values: [0.1, 0.5]',
     'name: "lr=0.5" key: "z" value { bool_value: true }', "lr=0.5"),
    # A stepped int range and a pure transition named like its last edge.
    ('name: "w" key: "w" int_range { start: 2 stop: 8 step: 3 }',
     'name: "w=8"', "w=8"),
])
def test_every_kind_of_expanded_edge_name_clash_is_refused(first, second,
                                                           edge):
  text = _two_actions(first, second)
  with pytest.raises(GraphNasError) as info:
    space_lib.loads(text, source="c")
  one, two = (t.split('"')[1] for t in (first, second))
  assert str(info.value) == (
      f"c:4: vertex 'a', action '{two}': action '{one}' (line 3) and action "
      f"'{two}' (line 4) both make an edge named '{edge}' (an action's "
      "values expand to edges named \"name=value\"); rename one of the two "
      "actions")


def _two_actions(first, second):
  return (f'start: "a"\nvertices {{ name: "a"\n'
          f'  actions {{ {first} target: "end" }}\n'
          f'  actions {{ {second} target: "end" }} }}\n'
          'vertices { name: "end" }\n')


def test_edge_names_that_only_look_alike_are_kept():
  s = space_lib.loads(_two_actions(
      'name: "n" key: "n" string_values: ["3", "3.0"]',
      'name: "n=3" key: "m" int_values: [4]'), source="c")
  assert [e.name for e in s.edges[0]] == ["n=3", "n=3.0", "n=3=4"]


def test_an_edge_name_clash_without_line_numbers_names_both_actions():
  proto = space_lib.pb.SearchSpace(start="a")
  v = proto.vertices.add(name="a")
  v.actions.add(name="k", target="end", key="k").int_values.extend([1, 2])
  v.actions.add(name="k=1", target="end")
  proto.vertices.add(name="end")
  with pytest.raises(GraphNasError) as info:
    space_lib.SearchSpace(proto, source="built")
  assert str(info.value) == (
      "built: vertex 'a', action 'k=1': action 'k' and action 'k=1' both "
      "make an edge named 'k=1' (an action's values expand to edges named "
      "\"name=value\"); rename one of the two actions")


BOM = "\ufeff"


def test_a_file_with_a_utf8_byte_order_mark_loads(tmp_path):
  text = (PROTOS / "select_optimizer_b2.textproto").read_text()
  plain = space_lib.loads(text)
  path = tmp_path / "windows.textproto"
  path.write_text(text, encoding="utf-8-sig")  # what Notepad writes
  assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
  for s in (space_lib.load(str(path)), space_lib.loads(BOM + text),
            space_lib.loads(path.read_bytes())):
    assert s.name == "select_optimizer_b2"
    assert s.vertex_names == plain.vertex_names
    assert s.proto == plain.proto
    assert s.decode([1, 49, 0, 99, 6]) == plain.decode([1, 49, 0, 99, 6])
  assert space_lib.load(str(path)).source == str(path)
  with pytest.raises(GraphNasError, match="^u: cannot parse textproto: not "
                     "UTF-8"):
    space_lib.loads("start: \"\u00e9\"".encode("latin-1"), source="u")


def test_errors_of_a_file_with_a_byte_order_mark_keep_their_lines(tmp_path):
  path = tmp_path / "bom.textproto"
  path.write_text(CLASHING_EDGES, encoding="utf-8-sig")
  with pytest.raises(GraphNasError) as info:
    space_lib.load(str(path))
  assert str(info.value).startswith(
      f"{path}:7: vertex 'a', action 'k=2': action 'k' (line 4) and action "
      "'k=2' (line 7) both make an edge named 'k=2'")
  # A parse error on the first line: its column counts from after the mark.
  with pytest.raises(GraphNasError) as info:
    space_lib.loads(BOM + 'start: "a" colour: 3', source="b")
  assert str(info.value).startswith("b:1:12: cannot parse textproto"), \
      str(info.value)
  # Only a leading mark is dropped: one inside the text is still an error.
  with pytest.raises(GraphNasError, match="^m:1:.*cannot parse textproto"):
    space_lib.loads('start: "a" ' + BOM + 'vertices { name: "a" }',
                    source="m")


def test_some_walks_before_any_append_is_a_warning():
  text = """
  start: "a" max_steps: 4
  vertices { name: "a"
    actions { name: "skip" target: "b" }
    actions { name: "add" target: "b" key: "layers" op: APPEND } }
  vertices { name: "b"
    actions { name: "k" target: "end" key: "layers[-1].k" int_values: [3] } }
  vertices { name: "end" }
  """
  with pytest.warns(SpaceWarning, match="vertex 'b', action 'k': some walks "
                    "reach it before any APPEND to 'layers'"):
    s = space_lib.loads(text, source="w")
  assert s.decode([1, 0]) == {"layers": [{"k": 3}]}
  with pytest.raises(GraphNasError, match="^w: vertex 'b', action 'k=3': "
                     "config key: list 'layers' does not exist yet"):
    s.decode([0, 0])


def test_add_overflowing_to_inf_fails_its_walk():
  text = """
  start: "a" max_steps: 3
  vertices { name: "a"
    actions { name: "big" target: "a" key: "x" op: ADD value { float_value: 1e308 } }
    actions { name: "stop" target: "end" } }
  vertices { name: "end" }
  """
  s = space_lib.loads(text, source="o")
  assert s.decode([0, 1]) == {"x": 1e308}
  with pytest.raises(GraphNasError, match="ADD gives inf"):
    s.decode([0, 0, 1])


def test_linear_twin_end_slot_does_not_collide_with_vertex_names():
  text = """
  start: "end"
  vertices { name: "end" actions { name: "x" target: "_end" key: "x" int_values: [1, 2] } }
  vertices { name: "_end" actions { name: "y" target: "fin" key: "y" int_values: [3] } }
  vertices { name: "fin" }
  """
  twin = space_lib.loads(text).linear_twin()
  assert twin.vertex_names == ["end", "_end", "__end"]
  assert twin.decode([1, 0]) == {"x": 2, "y": 3}


def test_linear_twin_too_long_is_refused_quickly():
  text = (PROTOS / "stack_layers.textproto").read_text().replace(
      "linear_unroll: 20", "linear_unroll: 2000000000")
  s = space_lib.loads(text, source="long")
  with pytest.raises(GraphNasError, match="^long: the linear twin unrolled "
                     "to 2000000000 steps has more than 10000 slots"):
    s.linear_twin()


def test_dot_text_escapes_quotes_and_backslashes():
  s = space_lib.loads(
      'name: "say \\"hi\\"" start: "a\\\\b" vertices { name: "a\\\\b" '
      'actions { name: "g\\"o" target: "e" key: "k" '
      'string_values: ["x\\"", "y"] } } vertices { name: "e" }')
  text = s.to_dot()
  assert text.startswith('digraph "say \\"hi\\"" {')
  assert '"a\\\\b" -> "e" [label="g\\"o\\nk in {x\\"..y} (2)"];' in text


def test_missing_file():
  with pytest.raises(GraphNasError, match="no such search space file"):
    space_lib.load("/nonexistent/space.textproto")


def test_unreachable_vertex_is_a_warning():
  text = ('start: "a" vertices { name: "a" actions { name: "go" target: "end" } }'
          ' vertices { name: "island" actions { name: "go" target: "end" } } '
          + GOOD_TAIL)
  with pytest.warns(SpaceWarning, match="island"):
    s = space_lib.loads(text)
  assert not s.reachable[s.vertex_index["island"]]
  assert "island" not in [s.vertex_names[v] for v, _ in s.linear_twin().slots]


# ------------------------------------------------------- property tests
def _one_in(draw, k):
  """True about once in k draws (False is what hypothesis shrinks to)."""
  return draw(st.integers(0, k - 1)) == k - 1


@st.composite
def random_graphs(draw):
  """A random small space that is valid by construction (edges mostly lead
  forward, to a later vertex or to the terminal "end"; a cycle has a bound)
  except for a fault now and then: an unknown start or target, an empty
  int range, a back edge that may leave a cycle unbounded or with no way
  out, a max_steps shorter than the longest walk."""
  n = draw(st.integers(1, 6))
  names = [f"v{i}" for i in range(n)]
  start = "ghost" if _one_in(draw, 12) else "v0"
  lines = [f'start: "{start}"']
  lines.append(f"max_steps: {draw(st.sampled_from([0, 8, 12, 2]))}")
  cyclic = False
  for i, name in enumerate(names):
    acts = []
    for j in range(draw(st.integers(0, 3))):
      if _one_in(draw, 25):
        target = "ghost"
      elif _one_in(draw, 5):
        target = draw(st.sampled_from(names[:i + 1]))  # a back edge / loop
        cyclic = True
      else:
        target = draw(st.sampled_from(names[i + 1:] + ["end"]))
      kind = draw(st.sampled_from(["plain", "range", "list"]))
      body = f'name: "a{j}" target: "{target}"'
      if kind == "range":
        lo = draw(st.integers(-3, 5))
        hi = lo + draw(st.integers(0, 4)) - (1 if _one_in(draw, 20) else 0)
        body += f' key: "k{i}" int_range {{ start: {lo} stop: {hi} }}'
      elif kind == "list":
        body += f' key: "k{i}" int_values: [{j}, {j + 10}]'
      acts.append(f"actions {{ {body} }}")
    lines.append(f'vertices {{ name: "{name}" {" ".join(acts)} }}')
  lines.append('vertices { name: "end" }')
  if cyclic and not _one_in(draw, 8) and "max_steps: 0" in lines[1]:
    lines[1] = "max_steps: 12"  # mostly bounded
  return "\n".join(lines)


def _end_vertex(space, actions):
  cur = space.start
  for a in actions:
    cur = int(space.next_vertex[cur, a])
  return cur


def _decode_unless_cut(space, actions, cut):
  """Decodes a walk; one cut short before a terminal is refused, naming
  what stopped it (max_steps, or the linear twin's unroll)."""
  if not cut:
    json.dumps(space.decode(actions))
    return
  with pytest.raises(GraphNasError,
                     match=r"(max_steps|linear_unroll) \d+ stopped the walk"):
    space.decode(actions)


def test_random_graphs_load_or_fail_cleanly_and_walks_end():
  counts = {"cases": 0, "loaded": 0, "stepped": 0, "cyclic": 0}

  @settings(max_examples=150, deadline=None)
  @given(random_graphs(), st.integers(0, 2**31))
  def check(text, seed):
    counts["cases"] += 1
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", SpaceWarning)
      try:
        s = space_lib.loads(text)
      except GraphNasError:
        return
    counts["loaded"] += 1
    counts["cyclic"] += bool(s.is_cyclic)
    rng = np.random.default_rng(seed)
    for _ in range(10):
      walk = s.sample_random(rng)
      assert len(walk.actions) <= s.max_steps
      assert s.terminal[walk.vertices[-1]] or (
          walk.truncated and len(walk.actions) == s.max_steps)
      _decode_unless_cut(s, walk.actions, walk.truncated)
      twin = s.linear_twin()
      tw = twin.sample_random(rng)
      end = _end_vertex(s, twin.to_graph_actions(tw.actions))
      _decode_unless_cut(twin, tw.actions, not s.terminal[end])
      counts["stepped"] += bool(walk.actions)

  check()
  # The property held on spaces that loaded, and most of them did: a
  # strategy whose spaces all fail to load would check nothing.
  assert counts["cases"] >= 100, counts
  assert counts["loaded"] >= 0.4 * counts["cases"], counts  # ~70% load
  assert counts["loaded"] < counts["cases"], counts  # faults: failed cleanly
  assert counts["stepped"] >= counts["loaded"], counts  # walks move
  assert counts["cyclic"] >= 5, counts


# ------------------------------------------------------------- tooling
def test_generated_pb2_matches_the_proto(tmp_path):
  """Fails when graph_nas/protos/search_space_pb2.py drifts from the .proto."""
  from google.protobuf import descriptor_pb2
  from graph_nas.protos import search_space_pb2
  out = tmp_path / "set.pb"
  # protoc runs in its own process: grpc_tools' protoc inside a process that
  # has TensorFlow's protobuf loaded can crash it.
  proc = subprocess.run(
      [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
       f"--descriptor_set_out={out}", str(PROTOS / "search_space.proto")],
      capture_output=True, text=True, check=False,
      timeout=SUBPROCESS_TIMEOUT_S)
  assert proc.returncode == 0, proc.stderr
  fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
  fresh = fds.file[0]
  committed = descriptor_pb2.FileDescriptorProto.FromString(
      search_space_pb2.DESCRIPTOR.serialized_pb)
  def strip_json_names(messages):
    for m in messages:
      for f in m.field:
        f.ClearField("json_name")
      strip_json_names(m.nested_type)
  strip_json_names(fresh.message_type)
  strip_json_names(committed.message_type)
  assert fresh == committed, ("regenerate with: python -m grpc_tools.protoc "
                              "-Iprotos --python_out=graph_nas/protos "
                              "protos/search_space.proto")


def _dot_cli(*args):
  return subprocess.run([sys.executable, "-m", "graph_nas.dot", *args],
                        capture_output=True, text=True, cwd=ROOT, check=False,
                        timeout=SUBPROCESS_TIMEOUT_S)


def _check_b4_dot(text):
  assert text.count("->") == 1 + 4 + 4 * 4 - 1  # one edge per Action message
  assert '"adam_p4" -> "end"' in text


def test_dot_cli_writes_select_optimizer_b4(tmp_path):
  """The DOT text alone (no Graphviz needed), to a file and to stdout."""
  dot_file = tmp_path / "b4.dot"
  space = f"--space={PROTOS / 'select_optimizer_b4.textproto'}"
  proc = _dot_cli(space, f"--out={dot_file}")
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout == ""
  _check_b4_dot(dot_file.read_text())
  proc = _dot_cli(space)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout == dot_file.read_text()


def test_dot_cli_renders_select_optimizer_b4(tmp_path):
  require_tool("dot", "graphviz")
  dot_file, png = tmp_path / "b4.dot", tmp_path / "b4.png"
  proc = _dot_cli(f"--space={PROTOS / 'select_optimizer_b4.textproto'}",
                  f"--out={dot_file}", f"--png={png}")
  assert proc.returncode == 0, proc.stderr
  _check_b4_dot(dot_file.read_text())
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dot_cli_bad_space_is_one_clear_line(tmp_path):
  bad = tmp_path / "bad.textproto"
  bad.write_text('start: "nope" vertices { name: "a" }')
  proc = _dot_cli(f"--space={bad}")
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines() == [
      f"error: {bad}: start vertex 'nope' is not a vertex of this space"]


def test_exact_walks_enumerates_everything():
  text = (PROTOS / "stack_layers.textproto").read_text().replace(
      "max_steps: 100", "max_steps: 3")
  small = space_lib.loads(text)
  walks = space_lib.exact_walks(small)
  assert walks == sorted([(1,), (0, 1), (0, 0, 1), (0, 0, 0)])
  probs = [np.exp(space_lib.uniform_log_prob(small, w)) for w in walks]
  assert abs(sum(probs) - 1) < 1e-12


# ------------------------------------------------- shipped spaces by name
def test_a_shipped_space_is_found_by_name(tmp_path, monkeypatch):
  shipped = space_lib.shipped_spaces()
  assert set(shipped) == {p.stem for p in ALL_SPACES}
  monkeypatch.chdir(tmp_path)  # not beside protos/: found all the same
  by_name = space_lib.load("cifar_cpu")
  assert by_name.name == "cifar_cpu"
  assert by_name.source == shipped["cifar_cpu"]
  assert space_lib.load("cifar_cpu.textproto").source == shipped["cifar_cpu"]
  # A path still works, and a file in the working folder comes first.
  assert space_lib.load(str(PROTOS / "stack_layers.textproto")).name == \
      "stack_layers"
  (tmp_path / "cifar_cpu.textproto").write_text(
      (PROTOS / "stack_layers.textproto").read_text())
  assert space_lib.load("cifar_cpu.textproto").name == "stack_layers"


def test_an_unknown_space_name_lists_the_shipped_ones():
  with pytest.raises(GraphNasError) as err:
    space_lib.load("cifar_gpu")
  msg = str(err.value)
  assert "\n" not in msg
  assert msg.startswith("no search space 'cifar_gpu': not a file, nor a "
                        "shipped space (shipped: cifar, cifar_cpu, ")
  for name in space_lib.shipped_spaces():
    assert name in msg
  with pytest.raises(GraphNasError, match=r"^protos/nope\.textproto: no "
                     "such search space file .*cifar_cpu"):
    space_lib.load("protos/nope.textproto")


# ---------------------------------------------------------- float_range
FLOAT_RANGE_SPACE = """
name: "fr" start: "lr"
vertices {{ name: "lr" actions {{ name: "lr" target: "end" key: "lr"
  float_range {{ {fields} }} }} }}
vertices {{ name: "end" }}
"""


def test_float_range_log_and_linear_values():
  log = space_lib.loads(FLOAT_RANGE_SPACE.format(
      fields="low: 0.00001 high: 0.1 num: 5 log: true"))
  assert [e.value for e in log.edges[0]] == [1e-5, 1e-4, 1e-3, 1e-2, 0.1]
  assert [e.name for e in log.edges[0]][:2] == ["lr=1e-05", "lr=0.0001"]
  linear = space_lib.loads(FLOAT_RANGE_SPACE.format(
      fields="low: 0.1 high: 0.5 num: 5"))
  assert [e.value for e in linear.edges[0]] == [0.1, 0.2, 0.3, 0.4, 0.5]
  assert "lr in {1e-05..0.1} (5, log scale)" in log.to_dot()
  # Evolution's local step treats it as ordered numbers.
  from graph_nas.search.algorithms.evolution import ordered_numeric
  assert ordered_numeric(log)[0]


@pytest.mark.parametrize("fields,match", [
    ("low: 0.1 high: 0.01 num: 4", "must be below high"),
    ("low: 0 high: 1 num: 4 log: true", "must be above 0"),
    ("low: 0 high: 1 num: 1", "at least 2"),
    ("low: 1 high: 1.000001 num: 50", "not distinct"),
])
def test_float_range_bad_fields_name_the_action(fields, match):
  with pytest.raises(GraphNasError, match=match) as e:
    space_lib.loads(FLOAT_RANGE_SPACE.format(fields=fields))
  assert "vertex 'lr'" in str(e.value)


def test_float_range_in_the_builder_round_trips():
  from graph_nas import api
  b = api.SpaceBuilder("fr", start="lr")
  b.vertex("lr").action("lr", "end", key="lr",
                        float_range=(1e-5, 1e-1, 5, True))
  b.vertex("end")
  built = b.build()
  again = space_lib.loads(b.to_textproto())
  assert [e.value for e in again.edges[0]] == [e.value for e in
                                                built.edges[0]]
  with pytest.raises(GraphNasError, match="float_range must be"):
    api.SpaceBuilder("x", start="a").vertex("a").action(
        "a", "b", key="a", float_range=(0.0, 1.0, 2.5))
  with pytest.raises(GraphNasError, match="at most one of"):
    api.SpaceBuilder("x", start="a").vertex("a").action(
        "a", "b", key="a", values=[1, 2], float_range=(0.0, 1.0, 3))


# ------------------------------------------------------------ max_taken
COUNTED_LOOP = """
name: "loop" start: "layer"
vertices { name: "layer" actions { name: "add" target: "kernel" key: "layers" op: APPEND } }
vertices { name: "kernel" actions { name: "k" target: "more" key: "layers[-1].k" int_values: [3, 5] } }
vertices { name: "more"
  actions { name: "continue" target: "layer" max_taken: 3 }
  actions { name: "stop" target: "end" } }
vertices { name: "end" }
"""


def counted_loop():
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no max_steps warning: none is needed
    return space_lib.loads(COUNTED_LOOP)


def test_a_counted_loop_needs_no_max_steps_and_never_ends_mid_layer():
  space = counted_loop()
  assert space.max_steps == 15  # 3 continues + 4 layers of 3 decisions
  rng = np.random.default_rng(0)
  layers = set()
  for _ in range(300):
    walk = space.sample_random(rng)
    assert not walk.truncated
    layers.add(len(space.decode(walk.actions)["layers"]))
  assert layers == {1, 2, 3, 4}
  with pytest.raises(GraphNasError, match=r"takes action 'continue' 4 "
                     r"times .* more than its max_taken 3"):
    space.check_walk([0, 0, 0] * 4 + [0, 0, 1])
  assert "(at most 3 times)" in space.to_dot()


def test_the_linear_twin_honours_max_taken():
  twin = counted_loop().linear_twin()
  rng = np.random.default_rng(1)
  layers = {len(twin.decode(twin.sample_random(rng).actions)["layers"])
            for _ in range(200)}
  assert layers == {1, 2, 3, 4}


@pytest.mark.parametrize("text,match", [
    (COUNTED_LOOP.replace("max_taken: 3", "max_taken: -1"),
     "must not be negative"),
    (COUNTED_LOOP.replace('actions { name: "stop" target: "end" }',
                          'actions { name: "stop" target: "end" '
                          'max_taken: 1 }'),
     "every action of this vertex has a max_taken"),
    (COUNTED_LOOP.replace(" max_taken: 3", ""), "set a positive max_steps"),
])
def test_max_taken_errors_name_the_vertex(text, match):
  with pytest.raises(GraphNasError, match=match) as e:
    space_lib.loads(text)
  assert "vertex 'more'" in str(e.value) or "max_steps" in match


@pytest.mark.parametrize("algorithm", ["random", "evolution", "reinforce",
                                       "pqt"])
def test_every_searcher_honours_max_taken(algorithm):
  from graph_nas.search import algorithms
  space = counted_loop()
  algo = algorithms.make_algorithm(algorithm, space, seed=0,
                                   **({"hidden_dim": 8, "embedding_dim": 4}
                                      if algorithm in ("reinforce", "pqt")
                                      else {}))
  seen = set()
  for _ in range(5):
    walks = algo.propose(8)
    for w in walks:
      walk = space.check_walk(w)  # raises beyond max_taken
      assert not walk.truncated
      seen.add(len(space.decode(w)["layers"]))
    algo.update(walks, [float(len(w)) for w in walks])
  assert max(seen) <= 4 and len(seen) >= 2


def test_max_taken_in_the_builder_round_trips():
  from graph_nas import api
  b = api.SpaceBuilder("loop", start="layer")
  b.vertex("layer").action("add", "more", key="n", op="ADD", value=1)
  (b.vertex("more").action("continue", "layer", max_taken=2)
   .action("stop", "end"))
  b.vertex("end")
  space = b.build()
  assert space.max_steps == 2 + 3 * 2
  assert space_lib.loads(b.to_textproto()).counter_limit.tolist() == [2]
  rng = np.random.default_rng(0)
  assert {space.decode(space.sample_random(rng).actions)["n"]
          for _ in range(100)} == {1, 2, 3}
  with pytest.raises(GraphNasError, match="max_taken must be an int"):
    api.SpaceBuilder("x", start="a").vertex("a").action(
        "a", "b", max_taken=1.5)
