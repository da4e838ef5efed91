# zapvisor in one container: supervisord, the health monitor and every session's runner.
# Build and run with compose.yaml (Easy Panel: a "Compose" service pointing at this repo).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/zapvisor/bin:$PATH \
    ZAPVISOR_HOME=/data \
    ZAPVISOR_BIND=0.0.0.0 \
    ZAPVISOR_HOST_ID=zapvisor

WORKDIR /src
COPY pyproject.toml README.md supervisord.conf.j2 ./
COPY ecosystem ecosystem
COPY runner runner
COPY tui tui
RUN python -m venv /opt/zapvisor \
    && /opt/zapvisor/bin/pip install --no-cache-dir . \
    && rm -rf /src
COPY scripts/container-entrypoint.sh /usr/local/bin/zapvisor-entrypoint

# An unprivileged user owns the state dir; a named volume copies this ownership.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin zapvisor \
    && mkdir -p /data && chown zapvisor:zapvisor /data && chmod 700 /data
USER zapvisor
WORKDIR /data
VOLUME ["/data"]
# BASE_PORT..BASE_PORT+MAX_SESSIONS-1 (3001-3010 by default); compose.yaml publishes them
EXPOSE 3001-3010

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD supervisorctl -c "$ZAPVISOR_HOME/supervisord.conf" pid >/dev/null || exit 1

ENTRYPOINT ["zapvisor-entrypoint"]
