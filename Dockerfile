# One image definition, two runtime targets (`make images` builds both):
#   docker build --target service -t stableseg:0.1.0 .          # ingest, features, assigner (no TensorFlow)
#   docker build --target trainer -t stableseg-trainer:0.1.0 .  # trainer and batch pipeline (TensorFlow CPU)
# Run a service with: docker run stableseg:0.1.0 <ingest|features|assigner>   (entrypoint: stableseg serve)
#
# Offline (proxy or air gap) builds share every line below: put wheels of the pinned set in wheelhouse/ (on a
# machine that can reach the index: `pip wheel --wheel-dir wheelhouse '.[train]' 'setuptools>=68' wheel`) and
# pass `--build-arg OFFLINE=1`: pip then installs with --no-index --find-links /wheelhouse. BASE_IMAGE may be any
# image with Python 3.11 and its venv module (python3 on PATH), e.g. a Debian bookworm image of your own.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG OFFLINE=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY wheelhouse/ /wheelhouse/
# Dependencies first, read from pyproject.toml alone: a code change reuses these layers.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
open('service.txt', 'w').write('\n'.join(p['dependencies'])); \
open('trainer.txt', 'w').write('\n'.join(p['dependencies'] + p['optional-dependencies']['train']))"
RUN python3 -m venv /opt/service \
 && /opt/service/bin/pip install --quiet ${OFFLINE:+--no-index --find-links /wheelhouse} -r service.txt
RUN python3 -m venv /opt/trainer \
 && /opt/trainer/bin/pip install --quiet ${OFFLINE:+--no-index --find-links /wheelhouse} -r trainer.txt
COPY README.md ./
COPY shared ./shared
COPY services ./services
RUN /opt/service/bin/pip wheel --quiet --no-deps ${OFFLINE:+--no-index --find-links /wheelhouse} -w /dist . \
 && /opt/service/bin/pip install --quiet --no-deps /dist/*.whl \
 && /opt/trainer/bin/pip install --quiet --no-deps /dist/*.whl

FROM ${BASE_IMAGE} AS runtime-base
# HOME is the data directory: the one writable place besides /tmp under a read-only root filesystem.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/var/lib/stableseg \
    STABLESEG_DATA_DIR=/var/lib/stableseg STABLESEG_LOG_FORMAT=json STABLESEG_BIND_HOST=0.0.0.0
RUN groupadd --system --gid 10001 stableseg \
 && useradd --system --uid 10001 --gid stableseg --home-dir /var/lib/stableseg --no-create-home stableseg \
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
