"""CLI sub-commands; see ktbench.cli."""
