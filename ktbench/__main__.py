"""`python -m ktbench ...` is `ktbench ...`."""

from ktbench.cli import main

main()
