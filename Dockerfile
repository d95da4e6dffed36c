# The compliance-exports image: the official Airflow image plus this project's lock.
#
# One image serves every Airflow component of docker-compose.yaml (api-server,
# scheduler, dag-processor, triggerer, Celery workers, init) and the vendor
# simulators. the package (src/) is installed, dags/ and include/ are copied in so the image runs on its
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

# The package is installed the way a deployment installs the wheel (here editable, so
# docker-compose.yaml can mount src/ for live edits): Airflow finds the provider (its
# connection types) and the UI plugin through the installed entry points.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/project/
COPY --chown=airflow:0 src/ /opt/airflow/project/src/
RUN pip install --no-cache-dir --no-deps --editable /opt/airflow/project

COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/

# The local-stack tooling and the simulators (`include`) run from /opt/airflow.
ENV PYTHONPATH=/opt/airflow
WORKDIR /opt/airflow
