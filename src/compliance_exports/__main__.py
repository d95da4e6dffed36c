"""``python -m compliance_exports verify``: check the lake against its manifests.

Runs anywhere with read access to the lake bucket (no Airflow): credentials come from
boto3's default chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
an instance role...), the endpoint from ``--endpoint-url`` or ``AWS_ENDPOINT_URL``.
Exit status: 0 no integrity problem (warnings allowed), 1 a partition failed or is
missing, 2 bad usage or verify could not run. See docs/VERIFY.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compliance_exports",
        description="Tools for the compliance-exports data lake.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    verify = commands.add_parser(
        "verify",
        help="check that every partition of a range of days is intact",
        description=(
            "For every selected export and day: the live manifest exists (or the day was "
            "never run, for a snapshot), matches its schema and its _versions/ copy; every "
            "object it names has its recorded sha256 and size (the recorded version on a "
            "versioned bucket); each Parquet part's footer has its recorded rows; the audit "
            "PDFs' windows neither overlap nor leave a hole and their events sum to the "
            "day's rows. Exit status 0: no integrity problem (warnings allowed); 1: a "
            "partition failed or is missing (gap); 2: bad usage or verify could not run."
        ),
    )
    verify.add_argument(
        "--from", dest="first", type=_day, required=True, metavar="DAY",
        help="first partition day, YYYY-MM-DD",
    )  # fmt: skip
    verify.add_argument(
        "--to", dest="last", type=_day, metavar="DAY",
        help="last partition day, YYYY-MM-DD, inclusive (default: --from)",
    )  # fmt: skip
    verify.add_argument(
        "--export", dest="exports", action="append", default=[], metavar="NAME",
        help="a registry entry to verify (repeatable; default: every entry)",
    )  # fmt: skip
    verify.add_argument("--json", action="store_true", help="print one JSON document")
    verify.add_argument(
        "--registry", metavar="PATH",
        help="the registry YAML (default: $COMPLIANCE_EXPORTS_REGISTRY or the shipped one)",
    )  # fmt: skip
    verify.add_argument(
        "--endpoint-url", metavar="URL",
        help="S3 endpoint (default: AWS_ENDPOINT_URL or AWS's own)",
    )  # fmt: skip
    verify.add_argument(
        "--workers", type=int, default=8, metavar="N",
        help="partitions checked at once (default: 8)",
    )  # fmt: skip
    verify.set_defaults(run=run_verify, command_parser=verify)
    return parser


def _s3_client(endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def run_verify(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from compliance_exports.registry import RegistryError, load_registry
    from compliance_exports.verify import VerifyError, verify_exports

    first: dt.date = args.first
    last: dt.date = args.last or first
    if last < first:
        parser.error(f"--to {last} is before --from {first}")
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: must be at least 1")
    try:
        registry = load_registry(args.registry)
    except RegistryError as exc:
        parser.error(f"--registry: {exc}")
    names = [entry.name for entry in registry.entries]
    unknown = [name for name in args.exports if name not in names]
    if unknown:
        parser.error(
            f"--export: unknown export {', '.join(map(repr, unknown))}; "
            f"the registry {registry.source} has: {', '.join(names)}"
        )
    selected = [registry.get(name) for name in dict.fromkeys(args.exports)] or list(
        registry.entries
    )
    try:
        report = verify_exports(
            selected, first, last, _s3_client(args.endpoint_url), workers=args.workers
        )
    except VerifyError as exc:
        print(f"verify could not run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args, args.command_parser)
    return code


if __name__ == "__main__":
    sys.exit(main())
