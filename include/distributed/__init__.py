"""The production topology (CeleryExecutor on PostgreSQL + Redis) run natively.

``DistributedStack`` starts, on this host, the same processes docker-compose.yaml runs
as containers: api-server, scheduler, dag-processor, triggerer and Celery workers, on
a fresh PostgreSQL database and Redis db number, all with one shared environment.
Tests use it as a context manager; users run ``python -m include.distributed up``.
See docs/DEPLOYMENT.md.
"""

from __future__ import annotations

from include.distributed.stack import (
    COMPONENTS,
    VENDOR_POOLS,
    DistributedStack,
    StackError,
    StackState,
)

__all__ = ["COMPONENTS", "VENDOR_POOLS", "DistributedStack", "StackError", "StackState"]
