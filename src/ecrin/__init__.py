"""Ecrin: a sovereign cloud for files."""

__version__ = "0.1.0"
