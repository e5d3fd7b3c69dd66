# Every environment image: the base (a build argument, bootstrapped offline when absent), a venv
# installed from host-downloaded wheels against the environment's hash lock, and the grading
# harness. Built by `grader images build`, which assembles the context (requirements.lock,
# wheels/, harness/) and passes BASE, PYTHON, SANDBOX_UID and SANDBOX_WORKDIR from
# grader/constants.py. An environment folder may carry a Dockerfile of its own instead.
ARG BASE=grader-base:bookworm
ARG PYTHON=3.11
ARG SANDBOX_UID=10001
ARG SANDBOX_WORKDIR=/sandbox

FROM ${BASE} AS build
ARG PYTHON
COPY requirements.lock /build/requirements.lock
COPY wheels/ /build/wheels/
RUN ["python3", "-m", "venv", "/opt/venv"]
RUN ["/opt/venv/bin/python", "-m", "pip", "install", "--no-index", "--no-cache-dir", \
     "--require-hashes", "--only-binary=:all:", "--find-links=/build/wheels", \
     "-r", "/build/requirements.lock"]
RUN ["/opt/venv/bin/python", "-m", "pip", "uninstall", "--yes", "--quiet", "pip", "setuptools"]
COPY harness/grader_harness/ /opt/venv/lib/python${PYTHON}/site-packages/grader_harness/
# The root file system is read-only at run time: compile everything now.
RUN ["/opt/venv/bin/python", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", "/opt/venv/lib"]
# The pre-imported modules' code in one file (grader_harness/bundle.py): a container's start
# then reads one mapped file instead of about a thousand small ones through the storage driver.
# Built last: its code objects come from the compiled files above.
ARG PREIMPORT=""
RUN ["/opt/venv/bin/python", "-I", "-m", "grader_harness.warmup", "--bundle"]

FROM ${BASE}
ARG SANDBOX_UID
ARG SANDBOX_WORKDIR
COPY --from=build /opt/venv /opt/venv
# Shell form only to expand the build arguments; both are fixed values from constants.py.
RUN useradd --uid "${SANDBOX_UID}" --user-group --no-create-home --home-dir "${SANDBOX_WORKDIR}" \
    --shell /usr/sbin/nologin sandbox \
 && mkdir -m 0755 "${SANDBOX_WORKDIR}"
USER ${SANDBOX_UID}:${SANDBOX_UID}
WORKDIR ${SANDBOX_WORKDIR}
ENTRYPOINT ["/opt/venv/bin/python", "-I", "-m", "grader_harness"]
