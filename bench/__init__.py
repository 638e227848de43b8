"""The benchmark suite: the orchestrator against plain Celery, in the same run."""
