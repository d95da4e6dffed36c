"""Files that are not the pipeline's package: registry, simulators, local-stack tooling.

Nothing here is installed: it runs from the repository root (``python -m include...``),
importing the pipeline's package ``compliance_exports`` as installed in the venv.
"""
