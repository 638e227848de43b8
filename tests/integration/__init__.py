"""Integration tier: real redis-server, real Celery worker processes, no fakes."""
