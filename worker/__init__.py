"""The Celery worker process: its app, its tasks, its per-process runtime and its logging.

Everything it does with Docker, Redis and challenges is in ``grader``; this package only
wires it into Celery. Entry point: ``celery -A worker.celery_app worker``.
"""
