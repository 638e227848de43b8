"""The worker side: the Celery app factory and the runtime that wraps every step."""
