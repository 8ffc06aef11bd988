"""`medservice`: the server and its admin commands (serve, migrate, token, check-config)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import DBAPIError

from medservice.demo import DEMO_FACILITY_ID, seed_demo
from medservice.domain.access import ALL, Role, may_hold_all_facilities
from medservice.logs import configure_logging
from medservice.settings import Settings, SettingsError, development_secret, load_settings

log = structlog.get_logger("medservice")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medservice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the gRPC server")
    p_serve.add_argument("--listen", help="host:port (default MEDSERVICE_LISTEN or "
                                          "127.0.0.1:50051)")
    p_serve.add_argument("--demo", action="store_true",
                         help="seed the demo facility once and print demo tokens")
    p_serve.add_argument("--no-migrate", action="store_true",
                         help="do not upgrade the schema at start (PostgreSQL default)")
    p_serve.add_argument("--workers", type=int, help="server processes sharing the port "
                                                    "(default MEDSERVICE_WORKERS or 1)")
    sub.add_parser("migrate", help="apply database migrations (safe from several replicas)")
    sub.add_parser("check-config", help="check the MEDSERVICE_* settings, keys and database "
                                        "without serving")
    p_token = sub.add_parser("token", help="mint a development token (HMAC secret)")
    p_token.add_argument("--role", required=True, choices=[r.value for r in Role])
    p_token.add_argument("--facility", action="append", default=[],
                         help="facility id the token may touch; repeat, or '*' for all")
    p_token.add_argument("--subject", help="the token's subject (default ROLE-dev)")
    p_token.add_argument("--hours", type=float, default=12.0, help="lifetime in hours")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except OperatorError as e:
        print(f"medservice: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a key, certificate or data file: say which, never a traceback
        what = f"cannot read {e.filename}" if e.filename else "a file or socket failed"
        print(f"medservice: {what}: {e.strerror or e}", file=sys.stderr)
        return 2
    except DBAPIError as e:
        print(f"medservice: {_database_error(e)}", file=sys.stderr)
        return 2


class OperatorError(Exception):
    """A mistake of the operator's, said in one line with what to do."""


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as e:
        raise OperatorError(str(e)) from None
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "migrate":
        from medservice.store.migrate import upgrade

        upgrade(settings.database_url)
        log.info("migrated")
        return 0
    if args.command == "check-config":
        return _check_config(settings)
    if args.command == "token":
        role = Role(args.role)
        facilities = args.facility or [ALL]
        if ALL in facilities and not may_hold_all_facilities(role):
            # The server refuses such a token: say so here, in one line, instead of minting it.
            print(f"medservice token: a {role.value} token needs --facility ID (repeat for "
                  "several); '*' is only for admin, integration and pharmacist",
                  file=sys.stderr)
            return 2
        print(_token(settings, role, facilities, args.subject or f"{args.role}-dev",
                     args.hours))
        return 0
    return _serve(settings, args)


def _check_config(settings: Settings) -> int:
    from medservice.config_check import check
    from medservice.server import make_verifier
    from medservice.store.migrate import schema_behind

    problems = check(settings, make_verifier, schema_behind)
    for problem in problems:
        print(f"medservice: {problem}", file=sys.stderr)
    if problems:
        return 2
    http = f", HTTP on {settings.http_listen}" if settings.http_listen else ""
    print(f"medservice: the configuration is usable (gRPC on {settings.listen}{http}, "
          f"{settings.environment})")
    return 0


def _database_error(e: DBAPIError) -> str:
    """One line about a database that cannot be used, without its URL's password."""
    first = str(e.orig).strip().splitlines()[0] if e.orig is not None else type(e).__name__
    return f"cannot use the database: {first[:300]} (check MEDSERVICE_DATABASE_URL and that " \
           "the database is running)"


def _token(settings: Settings, role: Role, facilities: list[str], subject: str,
           hours: float) -> str:
    from medservice.api.auth import mint_token

    return mint_token(_secret(settings), subject=subject, role=role,
                      facilities=facilities, ttl=timedelta(hours=hours),
                      issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def _secret(settings: Settings) -> str:
    try:
        return development_secret(settings)
    except SettingsError as e:
        raise OperatorError(str(e)) from None


def _check_keys(settings: Settings) -> None:
    from medservice.server import make_verifier

    try:
        make_verifier(settings)
    except SettingsError as e:
        raise OperatorError(str(e)) from None
    except ValueError:  # cryptography: not a PEM public key
        raise OperatorError("MEDSERVICE_JWT_PUBLIC_KEY_FILES names a file that is not a PEM "
                            "public key") from None


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from medservice.server import ListenError, serve
    from medservice.store.db import make_engine
    from medservice.store.migrate import schema_behind, upgrade
    from medservice.store.uow import uow_factory
    from medservice.workers import MAX_WORKERS, serve_workers

    if args.listen:
        settings = replace(settings, listen=args.listen)
    if args.workers is not None:
        settings = replace(settings, workers=args.workers)
    if not 1 <= settings.workers <= MAX_WORKERS:
        raise OperatorError(f"--workers must be between 1 and {MAX_WORKERS}")
    _check_keys(settings)  # a missing secret or unreadable key is said before anything starts
    # Embedded mode migrates itself; production runs `medservice migrate` explicitly, and
    # a server on a schema it does not match would answer every call INTERNAL.
    if settings.is_sqlite and not args.no_migrate:
        upgrade(settings.database_url)
    behind = schema_behind(settings.database_url)
    if behind is not None:
        raise OperatorError(f"{behind}: run `medservice migrate` with the same "
                            "MEDSERVICE_DATABASE_URL, then start the server again")
    if args.demo:
        engine = make_engine(settings.database_url)
        if seed_demo(uow_factory(engine), datetime.now(UTC)):
            log.info("seeded demo data", facility=DEMO_FACILITY_ID)
        engine.dispose()

    def ready(running: object) -> None:
        if args.demo:
            _print_demo_tokens(settings, getattr(running, "port", 0),
                               getattr(running, "http_port", 0))

    try:
        if settings.workers > 1:
            return serve_workers(settings, ready)
        serve(settings, on_ready=ready)
    except ListenError as e:
        raise OperatorError(str(e)) from None
    return 0


def _print_demo_tokens(settings: Settings, port: int, http_port: int = 0) -> None:
    lines = [f"\nmedservice is serving on localhost:{port} (demo facility '{DEMO_FACILITY_ID}')."]
    if http_port:
        lines.append(f"HTTP/JSON on http://localhost:{http_port} (OpenAPI at /openapi.json, "
                     "metrics at /metrics).")
        lines.append(f"Shift lead's board: http://localhost:{http_port}/board?facility="
                     f"{DEMO_FACILITY_ID} (paste the shift_lead token).")
    lines.append("Demo tokens, valid 12 hours:")
    for role in Role:
        facilities = ["*"] if role is Role.ADMIN else [DEMO_FACILITY_ID]
        token = _token(settings, role, facilities, f"demo-{role.value}", 12)
        lines.append(f"  {role.value:12} {token}")
    lines.append(
        "\nTry:  export MEDSERVICE_TOKEN=<the admin token above>\n"
        "      .venv/bin/medctl facilities list\n"
        f"      .venv/bin/medctl residents list --facility {DEMO_FACILITY_ID}"
        + (f"\n      curl -H \"Authorization: Bearer $MEDSERVICE_TOKEN\" "
           f"http://localhost:{http_port}/v1/facilities/{DEMO_FACILITY_ID}" if http_port else "")
        + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
