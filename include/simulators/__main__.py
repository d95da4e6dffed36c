"""Run the vendor simulators from a shell or a compose service.

    python -m include.simulators --port-base 18000 --seed 7 \\
        --set veza.rows=100000 --set oleria.latency=0.5 \\
        --fault 'sailpoint:rate_limit:count=3'

Prints each simulator's base URL and its Airflow connection (as an ``export
AIRFLOW_CONN_..._DEFAULT=...`` line), optionally writes them to ``--state-file``,
then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})

EPILOG = """\
ports:
  API origins listen on PORT_BASE+0 (oleria), +1 (veza), +2 (sailpoint), +3 (maxsight)
  whether or not every vendor runs; Oleria's download origin (presigned URLs) listens on
  --oleria-download-port (default PORT_BASE+4). --port-base 0 picks free ports.

settings (--set VENDOR.FIELD=VALUE, repeatable; values converted to the field's type):
  oleria: rows, latency, latency_max, token_ttl, url_ttl, create_status (200|201|202),
          fresh_url_per_poll, content_length, strict_fields, audience, client_id,
          client_secret, extra_contexts and forbidden_contexts (comma-separated),
          download_host, rate_limit (requests per rate_window seconds), rate_window
  veza:   rows, latency, latency_max, retention, id_field (id|export_id), status_prefix,
          precondition_status (400|412), strict_fields, api_key,
          forbidden_certifications (comma-separated)
  sailpoint, maxsight: the fields of their settings dataclasses.
  Booleans: true/false/yes/no/1/0. Optional fields: none/null for None.

faults (--fault VENDOR:KIND[:FIELD=VALUE,...], repeatable):
  KIND one of rate_limit, server_error, job_failure, never_finish, drop_connection,
  truncate, expire_url, token_expiry, veza_expired; FIELDs of base.Fault: count (-1 =
  forever), probability, path (regex), status, retry_after, retry_after_form
  (seconds|http-date), after_bytes. Faults can also be armed at run time with
  POST <base url>/_sim/faults.

profiles (--profile, or SIM_PROFILE):
  default  the vendors as their docs read most plainly
  hostile  every CHOICE at its least convenient documented-compatible alternative (each
           simulator module's HOSTILE: e.g. Oleria repeats an expiring url, Veza drops
           `format`, SailPoint returns another run's task, Maxsight ignores brackets and
           stamps microseconds)

examples:
  python -m include.simulators --profile hostile --port-base 0
  python -m include.simulators --vendor veza --port-base 0 --set veza.rows=1000000
  python -m include.simulators --host 0.0.0.0 --advertise-host simulators \\
      --state-file /tmp/simulators.json
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m include.simulators",
        description="Run the Oleria, Veza, SailPoint and Maxsight export API simulators.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--vendor",
        action="append",
        dest="vendors",
        metavar="VENDOR",
        help="a vendor to run (repeatable; default: all four)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--advertise-host",
        help="host name put in printed URLs and presigned links (default: --host, or "
        "127.0.0.1 when binding all interfaces)",
    )
    p.add_argument(
        "--port-base", type=int, default=18000, help="first API port (default 18000; 0 = free)"
    )
    p.add_argument(
        "--oleria-download-port",
        type=int,
        help="port of Oleria's download origin (default PORT_BASE+4)",
    )
    p.add_argument("--seed", type=int, default=0, help="data and fault seed (default 0)")
    p.add_argument(
        "--profile",
        choices=("default", "hostile"),
        default=os.environ.get("SIM_PROFILE") or "default",
        help="hostile: every undocumented choice at its least convenient documented-"
        "compatible alternative (default: $SIM_PROFILE or default); --set still wins",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        dest="settings",
        metavar="VENDOR.FIELD=VALUE",
        help="a simulator setting (repeatable)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        dest="faults",
        metavar="VENDOR:KIND[:FIELD=VALUE,...]",
        help="a fault armed at start (repeatable)",
    )
    p.add_argument("--state-file", type=Path, help="write URLs and connections here as JSON")
    return p


# --------------------------------------------------------------------------- conversion


def settings_class(vendor: str) -> type | None:
    """The vendor module's settings dataclass (the one whose name ends in ``Settings``)."""
    import importlib

    module = importlib.import_module(f"include.simulators.{vendor}")
    found = [
        value
        for name, value in vars(module).items()
        if name.endswith("Settings")
        and dataclasses.is_dataclass(value)
        and getattr(value, "__module__", "") == module.__name__
    ]
    return found[0] if len(found) == 1 and isinstance(found[0], type) else None


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def convert(text: str, hint: Any, name: str) -> Any:
    """``text`` as a value of type ``hint``; ValueError naming ``name`` if it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in {"none", "null"} and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(text, inner, name)
    if origin is list:
        return [convert(part.strip(), args[0], name) for part in text.split(",") if part.strip()]
    if origin is typing.Literal:
        if text not in args:
            raise ValueError(f"{name}: {text!r} is not one of {', '.join(map(str, args))}")
        return text
    if hint is bool:
        if text.lower() not in _TRUE | _FALSE:
            raise ValueError(f"{name}: {text!r} is not a boolean (true/false)")
        return text.lower() in _TRUE
    if hint in (int, float, str):
        try:
            return hint(text)
        except ValueError:
            raise ValueError(f"{name}: {text!r} is not a {hint.__name__}") from None
    return json.loads(text)


def parse_settings(items: Sequence[str], vendors: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["veza.rows=10"]`` -> ``{"veza": {"rows": 10}}`` with values typed per field."""
    result: dict[str, dict[str, Any]] = {vendor: {} for vendor in vendors}
    for item in items:
        key, sep, text = item.partition("=")
        vendor, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--set {item!r}: expected VENDOR.FIELD=VALUE")
        if vendor not in result:
            raise ValueError(f"--set {item!r}: vendor {vendor!r} is not running")
        cls = settings_class(vendor)
        if cls is None:
            result[vendor][name] = _loose(text)
            continue
        types_by_field = field_types(cls)
        if name not in types_by_field:
            known = ", ".join(types_by_field)
            raise ValueError(f"--set {item!r}: {vendor} has no setting {name!r} (known: {known})")
        result[vendor][name] = convert(text, types_by_field[name], f"{vendor}.{name}")
    return result


def _loose(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_fault(item: str, vendors: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """``"sailpoint:rate_limit:count=3"`` -> ``("sailpoint", {"kind": ..., "count": 3})``."""
    from include.simulators.base import FAULT_KINDS, Fault

    vendor, _, rest = item.partition(":")
    kind, _, options = rest.partition(":")
    if vendor not in vendors:
        raise ValueError(f"--fault {item!r}: vendor {vendor!r} is not running")
    if kind not in FAULT_KINDS:
        raise ValueError(
            f"--fault {item!r}: unknown kind {kind!r} (known: {', '.join(FAULT_KINDS)})"
        )
    spec: dict[str, Any] = {"kind": kind}
    types_by_field = field_types(Fault)
    for option in filter(None, (o.strip() for o in options.split(","))):
        name, sep, text = option.partition("=")
        if not sep or name not in types_by_field or name in {"kind", "fired"}:
            raise ValueError(f"--fault {item!r}: {option!r} is not FIELD=VALUE of a fault")
        spec[name] = convert(text, types_by_field[name], f"fault {name}")
    Fault(**spec)  # validate now, not after the servers started
    return vendor, spec


# --------------------------------------------------------------------------- running


def ports(port_base: int, vendor: str) -> int:
    from include.simulators import VENDORS

    return port_base + VENDORS.index(vendor) if port_base else 0


def start_all(args: argparse.Namespace, vendors: Sequence[str]) -> dict[str, Any]:
    """Start the requested simulators; stop the started ones if one fails."""
    from include.simulators import start_simulator

    settings = parse_settings(args.settings, vendors)
    faults = [parse_fault(item, vendors) for item in args.faults]
    advertised = advertise_host(args)
    if "oleria" in settings:
        oleria = settings["oleria"]
        default_download = args.port_base + 4 if args.port_base else 0
        oleria.setdefault("download_port", args.oleria_download_port or default_download)
        if advertised != args.host:
            oleria.setdefault("download_host", advertised)
    running: dict[str, Any] = {}
    try:
        for vendor in vendors:
            running[vendor] = start_simulator(
                vendor,
                host=args.host,
                port=ports(args.port_base, vendor),
                seed=args.seed,
                profile=args.profile,
                **settings[vendor],
            )
        for vendor, spec in faults:
            with running[vendor].admin() as admin:
                admin.post("/_sim/faults", json=spec).raise_for_status()
    except BaseException:
        stop_all(running)
        raise
    return running


def advertise_host(args: argparse.Namespace) -> str:
    if args.advertise_host:
        return str(args.advertise_host)
    return "127.0.0.1" if args.host in WILDCARD_HOSTS else str(args.host)


def stop_all(running: dict[str, Any]) -> None:
    for sim in running.values():
        sim.stop()


def describe(running: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What clients need: base URL, connection JSON and every origin of each simulator."""
    advertised = advertise_host(args)

    def public(url: str) -> str:
        return url.replace(f"//{args.host}:", f"//{advertised}:", 1)

    state: dict[str, Any] = {}
    for vendor, sim in running.items():
        connection = sim.connection()
        connection["host"] = public(connection["host"])
        connection["extra"] = {
            k: public(v) if isinstance(v, str) else v for k, v in connection["extra"].items()
        }
        state[vendor] = {
            "base_url": public(sim.base_url),
            "connection": connection,
            "origins": [public(server.base_url) for server in sim.servers],
        }
    return state


def announce(state: dict[str, Any], write: Callable[[str], None]) -> None:
    for vendor, info in state.items():
        write(f"{vendor} {info['base_url']}")
        conn = json.dumps(info["connection"], separators=(",", ":"))
        write(f"export AIRFLOW_CONN_{vendor.upper()}_DEFAULT='{conn}'")
    write("simulators ready (SIGINT or SIGTERM to stop)")


def write_state_file(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(temporary, path)


def wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.wait(0.5):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    from include.simulators import VENDORS

    args = parser().parse_args(argv)
    vendors = list(dict.fromkeys(args.vendors or VENDORS))
    unknown = [v for v in vendors if v not in VENDORS]
    if unknown:
        parser().error(f"unknown vendor {unknown[0]!r} (known: {', '.join(VENDORS)})")
    try:
        running = start_all(args, vendors)
    except ValueError as exc:
        parser().error(str(exc))
    state = describe(running, args)
    try:
        if args.state_file is not None:
            write_state_file(args.state_file, state)
        announce(state, lambda line: print(line, flush=True))
        wait_for_signal()
    finally:
        stop_all(running)
        if args.state_file is not None:
            args.state_file.unlink(missing_ok=True)
    print("simulators stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
