"""Bounded numbers for the benchmark scripts' argument parsers (argparse).

A value out of bounds fails when the arguments are parsed, with one line
naming the option (argparse: "argument --steps: must be >= 1, got 0").
"""

import argparse


def at_least(low, kind=int):
  """An argparse `type`: `kind` (int or float) of at least `low`."""

  def parse(text):
    try:
      value = kind(text)
    except ValueError:
      raise argparse.ArgumentTypeError(
          f"not {'an integer' if kind is int else 'a number'}: "
          f"{text!r}") from None
    if value < low:
      raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value

  parse.__name__ = kind.__name__
  return parse


def above(low, kind=float):
  """An argparse `type`: `kind` strictly above `low`."""

  def parse(text):
    try:
      value = kind(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= low:
      raise argparse.ArgumentTypeError(f"must be > {low}, got {value}")
    return value

  parse.__name__ = kind.__name__
  return parse
