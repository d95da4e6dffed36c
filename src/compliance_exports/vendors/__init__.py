"""One package per vendor: its vocabulary, request validation and (later) hook and operators.

The validation modules here are pure (no Airflow, no network): the client side checks a
request before submitting it and the simulators enforce the same rules server-side.
"""
