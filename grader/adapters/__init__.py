"""Adapters to the outside world: the Redis store, the Celery client, completions, webhooks.

Docker lives in ``grader.sandbox``. Import from the modules themselves.
"""
