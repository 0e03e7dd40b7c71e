"""``portico`` command line: argument parsing only."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import portico
from portico.counters import REDIS_PREFIX


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portico", description="Portico API gateway")
    version = f"portico {portico.__version__} (data plane {portico.data_plane_kind()})"
    parser.add_argument("--version", action="version", version=version)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway and the management API")
    serve.add_argument("--host", default=os.environ.get("PORTICO_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORTICO_PORT", "5555")))
    serve.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PORTICO_DATA_DIR", "portico-data")),
                       help="where the embedded SQLite store lives (default ./portico-data)")
    serve.add_argument("--db", default=os.environ.get("PORTICO_DB_URL"),
                       help="database URL, e.g. postgresql://user@host/db (default: SQLite in --data-dir)")
    serve.add_argument("--redis", default=os.environ.get("PORTICO_REDIS_URL"),
                       help="Redis URL for counters shared by several nodes, e.g. redis://127.0.0.1:6379/0")
    serve.add_argument("--redis-prefix", default=os.environ.get("PORTICO_REDIS_PREFIX") or REDIS_PREFIX,
                       help="prefix of the counters' Redis keys: nodes of one cluster share it, another cluster "
                            f"using the same Redis needs its own; no '|' (default {REDIS_PREFIX})")
    serve.add_argument("--log-level", default=os.environ.get("PORTICO_LOG_LEVEL", "info"),
                       choices=["debug", "info", "warning", "error"])
    serve.add_argument("--shutdown-timeout", type=float, default=10.0,
                       help="seconds in-flight requests get to finish on SIGTERM/SIGINT")
    env = os.environ.get
    https_port = env("PORTICO_HTTPS_PORT")
    serve.add_argument("--https-port", type=int, default=int(https_port) if https_port else None,
                       help="also serve the gateway and the management API over HTTPS on this port")
    serve.add_argument("--https-keystore", default=env("PORTICO_HTTPS_KEYSTORE"),
                       help="stored keystore (/is/keystore) holding the HTTPS key "
                            "(default: keystoreName of /configurations/keystore)")
    serve.add_argument("--https-key-alias", default=env("PORTICO_HTTPS_KEY_ALIAS"),
                       help="key alias in --https-keystore (default: signingAlias of /configurations/keystore)")
    serve.add_argument("--https-truststore", default=env("PORTICO_HTTPS_TRUSTSTORE"),
                       help="stored truststore that client certificates are checked against "
                            "(default: truststoreName of /configurations/keystore)")
    serve.add_argument("--https-client-auth", choices=["none", "optional", "required"],
                       default=env("PORTICO_HTTPS_CLIENT_AUTH", "none"),
                       help="ask HTTPS clients for a certificate: none, optional, or required")
    agent = sub.add_parser("agent", help="run the federation agent (links another gateway to a Portico "
                                          "management API); configured by gravitee_integration_* variables")
    agent.add_argument("--config", type=Path, default=os.environ.get("PORTICO_AGENT_CONFIG"),
                       help="YAML file with the agent's settings (environment variables override it)")
    agent.add_argument("--log-level", default=os.environ.get("PORTICO_LOG_LEVEL", "info"),
                       choices=["debug", "info", "warning", "error"])
    return parser


def _run_agent(args: argparse.Namespace) -> int:
    from portico.federation.agent import Agent
    from portico.federation.agent_config import AgentConfigError, load

    try:
        text = args.config.read_text() if args.config else None
        config = load(os.environ, text)
    except (AgentConfigError, OSError, UnicodeDecodeError) as exc:
        print(f"portico agent: {exc}", file=sys.stderr)
        return 2
    _install_loop()
    try:
        asyncio.run(Agent(config).run())
    except KeyboardInterrupt:
        return 0
    except OSError as exc:  # the health port is taken
        print(f"portico agent: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def _install_loop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "agent":
        return _run_agent(args)
    from sqlalchemy.exc import SQLAlchemyError

    from portico.app import ServeOptions, StartupError, serve
    from portico.gateway.tls import HttpsOptions

    if args.https_key_alias and not args.https_keystore:
        print("portico: --https-key-alias needs --https-keystore", file=sys.stderr)
        return 2
    https = HttpsOptions(args.https_keystore, args.https_key_alias, args.https_truststore, args.https_client_auth)
    options = ServeOptions(host=args.host, port=args.port, data_dir=args.data_dir, db_url=args.db,
                           shutdown_timeout=args.shutdown_timeout, redis_url=args.redis, redis_prefix=args.redis_prefix,
                           https_port=args.https_port, https=https)
    _install_loop()
    try:
        asyncio.run(serve(options))
    except StartupError as exc:
        print(f"portico: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, SQLAlchemyError) as exc:  # ports in use, unreachable or unsupported databases
        print(f"portico: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
