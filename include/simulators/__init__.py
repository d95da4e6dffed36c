"""Simulators of the four vendor export APIs (Oleria, Veza, SailPoint, Maxsight).

``start_simulator("veza", seed=7, rows=1000)`` starts one on free loopback ports and
returns a :class:`RunningSimulator`; ``python -m include.simulators --help`` runs them
from a shell. See docs/DESIGN.md and the README.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import httpx

from include.simulators.base import SimulatorServer

VENDORS: tuple[str, ...] = ("oleria", "veza", "sailpoint", "maxsight")
#: ``default``: the vendors as their docs read most plainly; ``hostile``: every CHOICE at
#: its least convenient documented-compatible alternative (each module's ``HOSTILE``).
PROFILES: tuple[str, ...] = ("default", "hostile")
PROFILE_ENV = "SIM_PROFILE"


@dataclass
class RunningSimulator:
    vendor: str
    base_url: str
    credentials: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)
    servers: list[SimulatorServer] = field(default_factory=list)

    def connection(self) -> dict[str, Any]:
        """The Airflow connection (JSON form) that points the pipeline at this simulator."""
        return {
            "conn_type": self.vendor,
            "host": self.base_url,
            "login": self.credentials.get("login"),
            "password": self.credentials.get("password"),
            "extra": dict(self.extra),
        }

    def admin(self) -> httpx.Client:
        """A client for the ``/_sim`` admin API of the API origin."""
        return httpx.Client(base_url=self.base_url, timeout=10)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def profile_settings(vendor: str, profile: str) -> dict[str, Any]:
    """The settings ``profile`` gives ``vendor``'s simulator (explicit settings win)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if profile == "default":
        return {}
    module = importlib.import_module(f"include.simulators.{vendor}")
    return dict(module.HOSTILE)


def start_simulator(vendor: str, *, profile: str = "default", **kwargs: Any) -> RunningSimulator:
    """Start ``vendor``'s simulator with ``profile``'s settings under the given ones."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}")
    module = importlib.import_module(f"include.simulators.{vendor}")
    sim: RunningSimulator = module.start(**{**profile_settings(vendor, profile), **kwargs})
    return sim
