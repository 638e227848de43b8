"""Fault-injection tests: killed processes, poison steps, duplicates, a Redis restart."""
