# Recloser gateway image: a slim Python, the wheel and nothing else, run as a non-root user.
#   docker build -t recloser .
#   docker run -p 8080:8080 -v $PWD/policy.yaml:/etc/recloser/policy.yaml:ro recloser
# Mount a policy at /etc/recloser/policy.yaml (deploy/compose/policy.yaml is a working example). It
# must have an `auth:` section: the gateway refuses to serve beyond loopback without one.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY policies ./policies
# With the tracing extra: traces are sent only when an OTLP endpoint is set (README, Traces).
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[tracing]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    RECLOSER_POLICY=/etc/recloser/policy.yaml
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/recloser --create-home recloser
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels /root/.cache
USER 10001:10001
# The spend ledger (metering.ledger.path, relative paths) is written under the working directory.
WORKDIR /var/lib/recloser
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["recloser"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
