"""The Airflow UI plugin of the project (registered through the ``airflow.plugins``
entry point and the provider info): the evidence view."""

#: where the api-server serves the evidence view (a prefix Airflow does not reserve)
PREFIX = "/compliance-evidence"
