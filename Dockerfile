# The one image: Compose runs it locally and Heroku builds it from heroku.yml.
# PYTHON_IMAGE is a build argument so CI can substitute a locally built base.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Build stage: a virtualenv with the pinned dependencies, trimmed, with pip
# removed, so neither an installer nor build tools reach the image that runs.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends binutils > /dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
# SQLAlchemy's compiled modules ship with symbols (8 MB): strip them. Test
# harnesses go, and so do what only an uninstaller or a type checker reads
# (each package's RECORD, the .pyi stubs) and the venv's other shells'
# activate scripts. Modules neither web nor release imports (other databases'
# dialects, asyncio, gunicorn's ASGI/HTTP2/control features, werkzeug's
# debugger, packaging) get no bytecode: they still work, compiled on import.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet --no-compile -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools \
 && cd /opt/venv/lib/python3*/site-packages \
 && rm -rf sqlalchemy/testing alembic/testing \
 && find . \( -name RECORD -path '*.dist-info/*' -o -name '*.pyi' \) -delete \
 && rm -f /opt/venv/bin/Activate.ps1 /opt/venv/bin/activate.csh /opt/venv/bin/activate.fish \
 && find sqlalchemy -name '*.so' -exec strip --strip-unneeded {} + \
 && python3 -m compileall -q -j 0 -x '/dialects/(mysql|mssql|oracle|sqlite)/|/ext/(asyncio|mypy)/|/gunicorn/(asgi|http2|dirty|ctl)/|/packaging/|/werkzeug/debug/' .

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=5000
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . .
# Heroku runs containers as an arbitrary non-root user; this image runs as
# nobody by default. A uid every host knows matters: Docker engines before 23
# resolve the user on the host when `docker compose watch` copies files in.
ARG APP_UID=65534
# Compile now: at run time the code is read-only to the (arbitrary) user. The
# directories live reload syncs into are the runtime user's, so that
# `docker compose watch` can delete files there (it runs rm as that user).
RUN python -m compileall -q app alembic gunicorn.conf.py \
 && find app alembic -type d ! -name __pycache__ -exec chown "${APP_UID}:${APP_UID}" {} +
USER ${APP_UID}
CMD ["bin/proc", "web"]
