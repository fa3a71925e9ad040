"""`python -m leitstand.cli` runs the `leitstand` command."""

from leitstand.cli import main

main()
