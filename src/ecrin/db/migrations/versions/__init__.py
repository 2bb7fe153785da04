"""Schema revisions, oldest first. Each file's `revision` names the one before it."""
