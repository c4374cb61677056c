"""The benchmarks: each script runs from the repository root as
`python -m benchmarks.<name>` (`--help` lists its options); `suite/` holds
the search-quality suite's parts. What each wrote: results/README.md.
Not part of the installed package (setup.py packages graph_nas only).
"""
