"""Runnable example workflows and their step code."""
