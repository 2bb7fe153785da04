"""Pure domain: paths, errors, model. Standard library only."""
