"""Conformance: the connectors against real servers of their protocols, not only the sandbox."""
