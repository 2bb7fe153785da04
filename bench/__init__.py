"""Ecrin's benchmark: identical WebDAV workloads against Ecrin and peer servers.

Run `bench/setup.sh` once, then `python -m bench` (or `python bench/run.py`); `--help` lists
the options. See docs/benchmarks.md for what each row measures and the latest results.
"""
