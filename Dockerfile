# The compliance-exports image: the official Airflow image plus this project's lock.
#
# One image serves every Airflow component of docker-compose.yaml (api-server,
# scheduler, dag-processor, triggerer, Celery workers, init) and the vendor
# simulators. dags/, plugins/ and include/ are copied in so the image runs on its
# own; docker-compose.yaml also mounts them for live edits.
#
#   docker build -t compliance-exports:3.3.2 .
ARG AIRFLOW_BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

# requirements.txt is a full lock (uv pip compile) pinning apache-airflow==3.3.2, so
# installing it cannot silently up- or downgrade Airflow inside the image.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt \
    && python -c "import airflow, sys; sys.exit(airflow.__version__ != '3.3.2')"

COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/

# Same import roots as the tests (pyproject: pythonpath = [".", "plugins"]):
# `import compliance_exports` and `import include.simulators` both work.
ENV PYTHONPATH=/opt/airflow:/opt/airflow/plugins
WORKDIR /opt/airflow
