"""Fuzzing search spaces: mutated textprotos load or fail cleanly.

Valid textprotos (the shipped protos/*.textproto and random small graphs)
are mutated -- fields deleted, duplicated, retargeted to other names,
retyped, set to extreme or non-finite numbers, and the text itself cut or
doubled -- and every stage a space goes through must either work or raise
GraphNasError naming the file in one line: load, decode of random walks, the
linear twin (and its decode against the graph's), DOT export text and, for a
few small cases, controller sampling. No other exception, a bounded time per
case, bounded memory. Derandomized, so CI sees the same cases every run.
"""

import json
import math
import random
import re
import resource
import time
import warnings

import numpy as np
import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from graph_nas import space as space_lib
from graph_nas.report import dot as dot_lib
from graph_nas.errors import GraphNasError, SpaceWarning
from graph_nas.protos import search_space_pb2 as pb
from tests.conftest import PROTOS

# The process's peak memory when this module's first test starts (not at
# import: in a full run, the tests collected before it but run earlier
# raise the peak too).
_RSS = {}


@pytest.fixture(autouse=True, scope="module")
def _peak_memory_before_the_fuzz_cases():
  _RSS["start"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  yield
SRC = "fuzz.textproto"
SHIPPED = {p.name: p.read_text() for p in sorted(PROTOS.glob("*.textproto"))}
# Seconds one case may take at most (load + walks + twin + DOT); generous for
# a loaded CI machine: a hang or a blow-up takes far longer.
CASE_LIMIT_S = 20.0

FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow,
                                   HealthCheck.data_too_large])

INT64 = [0, 1, -1, 2, 3, 7, 100, 10**6, 10**12, 2**63 - 1, -2**63]
INT32 = [0, 1, -1, 2, 3, 5, 20, 100, 10**5, 2**31 - 1, -2**31]
FLOATS = [0.0, -0.0, 0.25, 1.0, -3.5, 1e308, -1e308, 5e-324, math.nan,
          math.inf, -math.inf]
STRINGS = ["", "x", "end", "ghost", "a@0", "a@1", "_end", "layers",
           "layers[-1].k", "layers[0][1]", "n", "a.b", "a..b", "p=1",
           'q"uote', "back\\slash", "new\nline", "tab\t", "\u00e9t\u00e9",
           "[0]", "a[-1]", "k0", "v0", "v1"]


# ------------------------------------------------------------ generators
# Hypothesis draws one seed per case and a random.Random(seed) builds and
# mutates the space: hypothesis' own per-draw cost would take most of the
# budget. A failing case prints its seed and (via note) its text.
def small_graph(rnd):
  """A random small space as a proto, mostly valid (forward edges, a
  terminal, a bound on cyclic walks) so that mutations start from spaces
  that load; a back edge or a loop now and then."""
  n = rnd.randint(1, 5)
  names = [f"v{i}" for i in range(n)] + ["end"]
  proto = pb.SearchSpace(name="g", start="v0",
                         max_steps=rnd.choice([0, 4, 8, 30]))
  keys = ["n", "layers", "layers[-1].k", "a.b", "a", "k0", "opt"]
  for i in range(n):
    v = proto.vertices.add(name=names[i])
    for j in range(rnd.randint(0, 3)):
      forward = rnd.random() < 0.75
      target = rnd.choice(names[i + 1:] if forward else names)
      a = v.actions.add(name=f"a{j}", target=target)
      kind = rnd.choice(["plain", "value", "ints", "floats", "strings",
                         "range", "append"])
      if kind != "plain":
        a.key = rnd.choice(keys)
      if kind == "value":
        a.op = rnd.choice([pb.Action.SET, pb.Action.ADD])
        a.value.int_value = rnd.randint(-3, 3)
      elif kind == "ints":
        a.int_values.extend(rnd.sample(range(-5, 6), rnd.randint(1, 3)))
      elif kind == "floats":
        a.float_values.extend([0.5, 1.5][:rnd.randint(1, 2)])
      elif kind == "strings":
        a.string_values.extend(["relu", "swish"][:rnd.randint(1, 2)])
      elif kind == "range":
        a.int_range.start = rnd.randint(0, 3)
        a.int_range.stop = a.int_range.start + rnd.randint(0, 4)
      elif kind == "append":
        a.key = "layers"
        a.op = pb.Action.APPEND
      a.ends_config = rnd.random() < 0.2
    if rnd.random() < 0.15:
      v.active_if.add(key="opt").equals.string_value = "relu"
  proto.vertices.add(name="end")
  if rnd.random() < 0.5:
    proto.defaults.add(key="n").value.int_value = 0
  return proto


def _messages(msg, out):
  out.append(msg)
  for field in msg.DESCRIPTOR.fields:
    if field.message_type is None or field.message_type.GetOptions(
    ).map_entry:
      continue
    if field.is_repeated:
      for sub in getattr(msg, field.name):
        _messages(sub, out)
    elif msg.HasField(field.name):
      _messages(getattr(msg, field.name), out)
  return out


def _scalar(rnd, field):
  t = field.type
  if t in (field.TYPE_INT64, field.TYPE_SINT64, field.TYPE_SFIXED64):
    return rnd.choice(INT64)
  if t in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32):
    return rnd.choice(INT32)
  if t in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
    return rnd.choice(FLOATS)
  if t == field.TYPE_BOOL:
    return rnd.random() < 0.5
  if t == field.TYPE_ENUM:
    return rnd.randint(-2, 6)  # 0..2 are SET, APPEND, ADD
  if t == field.TYPE_STRING:
    return rnd.choice(STRINGS)
  return None


def _names_in(proto):
  out = [v.name for v in proto.vertices]
  out += [a.name for v in proto.vertices for a in v.actions]
  out += [a.key for v in proto.vertices for a in v.actions if a.key]
  return out or ["x"]


def mutate(rnd, proto):
  """Applies 0-4 mutations to a copy of proto; returns textproto text."""
  proto = type(proto).FromString(proto.SerializeToString())
  for _ in range(rnd.choice([0, 1, 1, 2, 3, 4])):
    msgs = _messages(proto, [])
    msg = rnd.choice(msgs)
    fields = [f for f in msg.DESCRIPTOR.fields
              if f.message_type is None or
              not f.message_type.GetOptions().map_entry]
    field = rnd.choice(fields)
    what = rnd.choice(["delete", "duplicate", "retarget", "retype",
                       "retype"])
    repeated = field.is_repeated
    value = getattr(msg, field.name)
    if what == "delete":
      if repeated and len(value):
        del value[rnd.randrange(len(value))]
      elif not repeated:
        msg.ClearField(field.name)
    elif what == "duplicate":
      if repeated and len(value):
        item = value[rnd.randrange(len(value))]
        if field.message_type is None:
          value.append(item)
        else:
          value.add().CopyFrom(item)
      elif not repeated and field.type == field.TYPE_STRING:
        # Another message's name / key / target: collisions.
        setattr(msg, field.name, rnd.choice(_names_in(proto)))
    elif what == "retarget" and field.type == field.TYPE_STRING:
      new = rnd.choice(_names_in(proto) + STRINGS)
      if repeated:
        value.append(new)
      else:
        setattr(msg, field.name, new)
    elif field.message_type is None:  # retype a scalar / repeated scalar
      x = _scalar(rnd, field)
      if repeated:
        value.append(x)
      elif field.type == field.TYPE_STRING and rnd.random() < 0.5:
        setattr(msg, field.name, rnd.choice(_names_in(proto)))
      else:
        setattr(msg, field.name, x)
    elif field.message_type.name == "Value" and not repeated:
      kind = rnd.choice(["int_value", "float_value", "string_value",
                         "bool_value", None])
      value.Clear()
      if kind is None:
        value.SetInParent()  # an empty `value {}`
      else:
        setattr(value, kind,
                _scalar(rnd, pb.Value.DESCRIPTOR.fields_by_name[kind]))
    elif not repeated:
      value.SetInParent()
  text = text_format.MessageToString(proto)
  if rnd.random() < 1 / 7:  # a textual mutation: lines cut or doubled
    lines = text.splitlines()
    i = rnd.randrange(max(1, len(lines)))
    if rnd.random() < 0.5:
      lines.insert(i, lines[i] if lines else "")
    else:
      del lines[i:i + rnd.randint(1, 3)]
    text = "\n".join(lines)
  return text


PARSED = {name: text_format.Parse(text, pb.SearchSpace())
          for name, text in SHIPPED.items()}
SEEDS = st.integers(0, 2**63 - 1)


def graph_case(seed):
  rnd = random.Random(seed)
  return mutate(rnd, small_graph(rnd))


def shipped_case(seed):
  rnd = random.Random(seed)
  return mutate(rnd, PARSED[rnd.choice(sorted(PARSED))])


# ------------------------------------------------------------- checking
def _clean_error(e, source=SRC):
  msg = str(e)
  assert msg.startswith(source), msg
  assert "\n" not in msg, msg
  return msg


def _dot_ok(text):
  assert text.startswith("digraph ") and text.endswith("}\n")
  for line in text.splitlines():
    # Every quoted string closed: unescaped quotes come in pairs.
    assert len(re.findall(r'(?<!\\)(?:\\\\)*"', line)) % 2 == 0, line


def _walks(space, rng, k):
  for _ in range(k):
    walk = space.sample_random(rng)
    assert len(walk.actions) <= space.max_steps
    assert space.terminal[walk.vertices[-1]] or (
        walk.truncated and len(walk.actions) == space.max_steps)
    yield walk


def _decode(space, actions):
  """The config, or None when the walk fails to decode (cleanly)."""
  try:
    config = space.decode(actions)
  except GraphNasError as e:
    _clean_error(e)
    return None
  json.dumps(config, allow_nan=False)  # JSON-able and finite
  return config


def exercise(text, seed, walks=3):
  """Everything but the controller; returns the space or None."""
  started = time.monotonic()
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", SpaceWarning)
      s = space_lib.loads(text, source=SRC)
  except GraphNasError as e:
    _clean_error(e)
    return None
  rng = np.random.default_rng(seed)
  for walk in _walks(s, rng, walks):
    # A walk max_steps stops before a terminal has no config.
    assert _decode(s, walk.actions) is None or not walk.truncated
  finished = s.sample_random(rng, finish=True)  # never cut by max_steps
  assert s.terminal[finished.vertices[-1]] and not finished.truncated
  _decode(s, finished.actions)
  _dot_ok(s.to_dot())
  _dot_ok(dot_lib.policy_dot(s))
  try:
    twin = s.linear_twin()
  except GraphNasError as e:
    _clean_error(e)
  else:
    assert len(twin.slots) <= space_lib.MAX_LINEAR_SLOTS
    for walk in _walks(twin, rng, walks):
      assert len(walk.actions) == len(twin.slots)  # every slot decides
      got = _decode(twin, walk.actions)
      graph_walk = twin.to_graph_actions(walk.actions)
      end = s.start
      for a in graph_walk:
        end = int(s.next_vertex[end, a])
      # Nor does one that the twin's unroll stops before a terminal.
      assert got is None or s.terminal[end]
      try:
        s.check_walk(graph_walk)
      except GraphNasError:
        continue  # the unroll ended before the graph walk: not comparable
      # The twin decodes to what the graph walk it stands for decodes to
      # (or both fail).
      assert got == _decode(s, graph_walk)
    _dot_ok(twin.to_dot())
  elapsed = time.monotonic() - started
  assert elapsed < CASE_LIMIT_S, f"{elapsed:.1f}s for one case"
  return s


# ---------------------------------------------------------------- tests
def _fuzz(case, examples, walks, least_loaded):
  """Runs `examples` derandomized cases of `case` (seed -> text) through
  every stage; asserts that at least a `least_loaded` share of them loaded,
  so that the stages after load are exercised, not only load's errors."""
  counts = {"cases": 0, "loaded": 0}

  @settings(max_examples=examples, **FUZZ)
  @given(SEEDS)
  def check(seed):
    text = case(seed)
    note(text)
    counts["cases"] += 1
    counts["loaded"] += exercise(text, seed, walks=walks) is not None

  check()
  assert counts["cases"] >= examples // 2, counts
  assert counts["loaded"] >= least_loaded * counts["cases"], counts
  assert counts["loaded"] < counts["cases"], counts  # some mutations break


def test_mutated_random_graphs():
  _fuzz(graph_case, 2000, walks=3, least_loaded=0.25)  # about 38% load


def test_mutated_shipped_spaces():
  _fuzz(shipped_case, 300, walks=2, least_loaded=0.25)  # about 48% load


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_spaces_pass_every_stage(name):
  assert exercise(SHIPPED[name], 0, walks=10) is not None


def test_memory_stays_bounded():
  """The fuzz cases above did not blow memory up (ru_maxrss, the peak, is
  in KiB; the baseline is taken when this module's first test starts)."""
  grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
               - _RSS["start"]) / 1024
  assert grown_mib < 1024, f"peak memory grew by {grown_mib:.0f} MiB"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_errors_of_a_file_name_the_file(name, tmp_path):
  """load() of a file on disk: its errors start with the file's path."""
  path = tmp_path / name
  path.write_text(SHIPPED[name].replace('start: "', 'start: "ghost_', 1))
  with pytest.raises(GraphNasError) as info:
    space_lib.load(str(path))
  _clean_error(info.value, source=str(path))


# ------------------------------------------------------------ controller
@settings(max_examples=4, **FUZZ)
@given(SEEDS)
def test_controller_samples_mutated_small_spaces(seed):
  text = graph_case(seed)
  note(text)
  s = exercise(text, seed, walks=1)
  assume(s is not None)
  from graph_nas.search.controller import DynamicController
  c = DynamicController(s, embedding_dim=4, hidden_dim=8, seed=seed % 2**31)
  walks = c.sample(4)
  for w in walks:
    s.check_walk(w)
  assert np.isfinite(c.log_prob(walks)).all()


def test_controller_samples_a_space_whose_start_is_terminal():
  # Once a crash (an empty TensorArray stacked): the only walk is empty.
  from graph_nas.search.controller import DynamicController
  s = space_lib.loads('start: "a" vertices { name: "a" }', source=SRC)
  c = DynamicController(s, embedding_dim=4, hidden_dim=8)
  assert c.sample(2) == [(), ()]
  assert np.allclose(c.log_prob([(), ()]), 0.0)  # probability 1
