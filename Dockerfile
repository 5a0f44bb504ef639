# llm-healthcheck: the readiness sidecar image.
#
#   buildah bud -t llm-healthcheck .        (or: docker build -t llm-healthcheck .)
#
# BASE_IMAGE names any Debian-like image with python3 >= 3.11 and the venv module; the
# container test builds one from Debian packages where no registry is reachable. Both stages
# use the same base so the virtualenv's interpreter path is valid in the final image.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Every dependency ships wheels, so this stage needs no compiler either; pip would fail loudly
# rather than silently build one from source here.
RUN python3 -m venv /opt/llm-healthcheck
COPY . /src
# A regular (not editable) install: the image must not depend on /src. Bytecode is compiled
# now, because the root filesystem is read-only at run time. pip and setuptools are removed
# from the result: nothing installs packages in the running container.
RUN /opt/llm-healthcheck/bin/pip install --only-binary=:all: /src \
 && /opt/llm-healthcheck/bin/python -m compileall -q /opt/llm-healthcheck/lib \
 && /opt/llm-healthcheck/bin/pip uninstall --yes pip setuptools

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="llm-healthcheck" \
      org.opencontainers.image.description="Readiness sidecar for LLM inference servers" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric UID/GID so Kubernetes can verify runAsNonRoot without a passwd lookup, and
# so securityContext.runAsUser in the manifests matches.
RUN groupadd --gid 10001 llm-healthcheck \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin llm-healthcheck
COPY --from=build /opt/llm-healthcheck /opt/llm-healthcheck
# The shipped rule packs (and their fleet views under fleet/), read-only; use one with
# RULES_PATH=/usr/share/llm-healthcheck/rules/tgi.yaml,
# or mount your own ConfigMap (the Kubernetes examples mount it at /etc/llm-healthcheck/rules).
COPY rules/ /usr/share/llm-healthcheck/rules/
ENV PATH=/opt/llm-healthcheck/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Nothing is written to the root filesystem: gunicorn's worker heartbeat lives in /dev/shm.
USER 10001:10001
EXPOSE 8081
ENTRYPOINT ["llm-healthcheck", "serve"]
