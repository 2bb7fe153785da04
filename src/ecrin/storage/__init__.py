"""Blob stores: where immutable file contents live. Never imports `ecrin.db`."""
