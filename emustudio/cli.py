"""The ``emustudio`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from emustudio.config import Settings
from emustudio.runtime.networks import CidrConflict
from emustudio.server import EmuStudio, StartupError


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": getattr(args, "data_dir", None),
    }
    return Settings.load(os.environ, config_file=args.config, overrides=overrides)


async def _up(settings: Settings) -> int:
    app = EmuStudio(settings)
    try:
        await app.start()
    except (StartupError, CidrConflict) as exc:
        print(f"emustudio: {exc}", file=sys.stderr)
        await app.stop()
        return 1
    print(f"emustudio is up (instance {app.instance_id}, data in {settings.data_dir})")
    print(f"  endpoint:          {settings.endpoint_url}")
    print(f"  region:            {settings.region}")
    print(f"  access key id:     {settings.access_key_id}")
    print(f"  secret access key: {settings.secret_access_key}")
    print(
        f"  try: aws emr list-studios --endpoint-url {settings.endpoint_url}"
        f" --region {settings.region}"
    )
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("emustudio: stopping", flush=True)
    await app.stop()
    return 0


def _config(settings: Settings) -> int:
    for env, default, help_text in Settings.describe():
        print(f"{env:34} {default:28} {help_text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emustudio", description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML file of settings")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the gateway until Ctrl-C")
    up.add_argument("--host")
    up.add_argument("--port", type=int)
    up.add_argument("--data-dir", type=Path)
    commands.add_parser("config", help="list every setting with its default")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = _settings(args)
    if args.command == "up":
        return asyncio.run(_up(settings))
    return _config(settings)


if __name__ == "__main__":
    raise SystemExit(main())
