# Shopflow on the official Airflow image, the version pyproject.toml pins. The project is
# installed at build time (no pip at container start); docker-compose.yml runs this image.
#   docker compose build
FROM apache/airflow:3.3.2-python3.11

USER root
# SHOPFLOW_HOME: a named volume mounted here inherits this owner (the image's airflow user)
RUN mkdir -p /opt/shopflow /opt/shopflow-home \
 && chown -R airflow:0 /opt/shopflow /opt/shopflow-home
USER airflow
WORKDIR /opt/shopflow

# dependencies first, so that a code change does not reinstall them
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:0 shopflow ./shopflow
COPY --chown=airflow:0 ml ./ml
# editable: the package finds dags/, dbt_project/ and expectations/ next to itself
RUN pip install --no-cache-dir -c constraints.txt -e .
COPY --chown=airflow:0 dags ./dags
COPY --chown=airflow:0 dbt_project ./dbt_project
COPY --chown=airflow:0 expectations ./expectations
