"""The Airflow UI plugin of the project (registered through the ``airflow.plugins``
entry point and the provider info)."""
