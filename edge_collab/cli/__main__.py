"""`python -m edge_collab.cli` runs the command line (as the console script does)."""

from edge_collab.cli.main import main

main()
