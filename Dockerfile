# One image definition, two runtime targets:
#   docker build --target service -t stableseg:0.1.0 .          # ingest, features, assigner (no TensorFlow)
#   docker build --target trainer -t stableseg-trainer:0.1.0 .  # trainer and batch pipeline (TensorFlow CPU)
# Run a service with: docker run stableseg:0.1.0 <ingest|features|assigner>   (entrypoint: stableseg serve)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN python -m venv /opt/service && /opt/service/bin/pip install . \
 && python -m venv /opt/trainer && /opt/trainer/bin/pip install '.[train]'

FROM ${PYTHON_IMAGE} AS runtime-base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    STABLESEG_DATA_DIR=/var/lib/stableseg STABLESEG_LOG_FORMAT=json STABLESEG_BIND_HOST=0.0.0.0
RUN groupadd --system --gid 10001 stableseg && useradd --system --uid 10001 --gid stableseg --no-create-home stableseg \
 && mkdir -p /var/lib/stableseg/artifacts && chown -R stableseg:stableseg /var/lib/stableseg
USER 10001:10001
WORKDIR /var/lib/stableseg
# Liveness only: /healthz never depends on Kafka, Redis or SQL. HEALTH_PORT is set per service (compose, k8s).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTH_PORT','8000'), timeout=2)"
ENTRYPOINT ["stableseg", "serve"]

FROM runtime-base AS service
COPY --from=build /opt/service /opt/service
ENV PATH=/opt/service/bin:$PATH
CMD ["assigner"]

FROM runtime-base AS trainer
COPY --from=build /opt/trainer /opt/trainer
ENV PATH=/opt/trainer/bin:$PATH
CMD ["trainer"]
