"""Metadata stores: the source of truth for the tree. Never imports `ecrin.storage`."""
