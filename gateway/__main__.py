"""``python -m gateway`` runs the ``yrdgw`` command line."""

from gateway.cli import main

main()
