"""``python -m inpaintlab`` runs the command line."""

from .cli import main

main()
