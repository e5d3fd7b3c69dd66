"""Names and numbers that are part of the design, not deployment choices."""

from __future__ import annotations

from typing import Final

# Image naming and labels.
ENV_IMAGE_REPO: Final = "grader-env"
BASE_IMAGE_REPO: Final = "grader-base"
LABEL_PREFIX: Final = "org.grader"
LABEL_ENVIRONMENT: Final = f"{LABEL_PREFIX}.environment"
LABEL_INPUTS_HASH: Final = f"{LABEL_PREFIX}.inputs-hash"
LABEL_PYTHON: Final = f"{LABEL_PREFIX}.python"
LABEL_PACKAGES: Final = f"{LABEL_PREFIX}.packages"
LABEL_PREIMPORT: Final = f"{LABEL_PREFIX}.preimport"
LABEL_PACKAGE_PREFIX: Final = f"{LABEL_PREFIX}.package."
LABEL_ROLE: Final = f"{LABEL_PREFIX}.role"
LABEL_RUN: Final = f"{LABEL_PREFIX}.run"

# The base image bootstrapped from Debian packages when no base is present.
BASE_SUITE: Final = "bookworm"
BASE_PACKAGES: Final = ("python3", "python3-venv")
BASE_MIRROR: Final = "http://deb.debian.org/debian"

# Inside every environment image (passed to the Dockerfile as build arguments; the harness's
# protocol module repeats the workdir and version: tests/grader/sandbox/test_contract.py).
SANDBOX_UID: Final = 10001
SANDBOX_WORKDIR: Final = "/sandbox"
HARNESS_COMMAND: Final = ("/opt/venv/bin/python", "-I", "-m", "grader_harness")
HARNESS_PROTOCOL_VERSION: Final = 1
HARNESS_MAX_SUBMISSION_BYTES: Final = 4 * 1024 * 1024
"""The largest submission line the harness reads (its ``MAX_SUBMISSION_BYTES``)."""

# Files of an environment folder under images/.
MANIFEST_FILE: Final = "environment.toml"
LOCK_FILE: Final = "requirements.lock"
DOCKERFILE: Final = "Dockerfile"
"""An environment folder's own Dockerfile, when it needs one."""
ENVIRONMENT_DOCKERFILE: Final = "environment.Dockerfile"
"""The Dockerfile every environment is built from otherwise (beside the folders)."""
HARNESS_DIR: Final = "harness"

# Celery task names and queues: the API sends tasks by name, never importing ``worker``.
TASK_RUN_SUBMISSION: Final = "grader.run_submission"
TASK_DELIVER_WEBHOOK: Final = "grader.deliver_webhook"
TASK_VALIDATE_CHALLENGE: Final = "grader.validate_challenge"
TASK_REGRADE_CHALLENGE: Final = "grader.regrade_challenge"
QUEUE_PREFIX: Final = "grader.env."
QUEUE_WEBHOOKS: Final = "grader.webhooks"
TASK_PAYLOAD_VERSION: Final = 1

API_VERSION: Final = "v1"

# The service image (API and worker) and its base, with redis-server for the compose stack.
SERVICE_IMAGE: Final = "grader-service"
SERVICE_BASE_TAG: Final = f"{BASE_IMAGE_REPO}:{BASE_SUITE}-service"
SERVICE_BASE_PACKAGES: Final = ("python3", "python3-venv", "redis-server")
SERVICE_DIR: Final = "service"
