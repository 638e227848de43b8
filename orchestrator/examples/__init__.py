"""Runnable example workflows and their step code (shipped with the package).

They live inside ``orchestrator`` so that installing the project adds no
top-level ``examples`` package to site-packages, where it could clash with a
user's own; ``orch demo`` finds the YAML here as package data.
"""
