"""``python -m evalwire`` runs the command line."""

from evalwire.cli import entry

entry()
