"""Grader worker: the Celery app, its tasks and the Docker sandbox."""
