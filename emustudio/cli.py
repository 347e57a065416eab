"""The ``emustudio`` command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import signal
import sys
import time
from pathlib import Path

from emustudio.config import Settings
from emustudio.engines import releases
from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import ImageBuildError, Images, cluster_image


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": getattr(args, "data_dir", None),
        "demo": getattr(args, "demo", None),
    }
    # `emustudio up` sets the demo up unless told not to (--no-demo, EMUSTUDIO_DEMO=false or
    # demo: false in the config file); the setting's own default stays off for other callers.
    defaults = {"demo": True} if args.command == "up" else None
    return Settings.load(
        os.environ, config_file=args.config, overrides=overrides, defaults=defaults
    )


async def _up(settings: Settings) -> int:
    # Here, not at the top: the whole gateway is a second of imports that `emustudio az`,
    # `images` and `idp` (short-lived commands, the tests' among them) do without.
    from emustudio.runtime.networks import CidrConflict
    from emustudio.server import EmuStudio, StartupError

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
    if app.s3_server is not None:
        print(f"  s3 (embedded):     {app.s3_server.url}, keys in {app.s3_server.state_path}")
    if app.enforcement is None:
        print("  security groups:   NOT enforced between containers (enforce_security_groups)")
    print(
        f"  try: aws emr list-studios --endpoint-url {settings.endpoint_url}"
        f" --region {settings.region}"
    )
    demo = app.demo.facts
    if demo is not None:
        if demo.studio_url:
            secret = f" / {demo.password}" if demo.password else ""  # none when hashed
            who = f" — sign in as {demo.user}{secret}" if demo.user else ""
            print(f"  Demo Studio:       {demo.studio_url}{who}")
        if demo.sso_studio_url:
            print(f"  Identity Center:   {demo.sso_studio_url} — alice is assigned, bob is not")
        print(f"  IdP portal:        {demo.portal_url} (users in {demo.users_file})")
        if demo.console_user:
            print(
                f"  Console:           {demo.console_url} — sign in as IAM user"
                f" {demo.console_user} / {demo.console_password} (an administrator)"
            )
        print("  (--no-demo or EMUSTUDIO_DEMO=false to go without the demo)")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("emustudio: stopping", flush=True)
    await app.stop()
    # Everything is closed: spare the interpreter's teardown its collections over the whole
    # heap (about a second of an otherwise finished process, at every stop and restart).
    gc.freeze()
    return 0


async def _images(settings: Settings, action: str, force: bool) -> int:
    docker = DockerExecutor(settings.docker_url)
    images = Images.from_settings(docker, settings)
    started = time.monotonic()
    try:
        if action == "bootstrap":
            tag = await images.bootstrap(force=force)
        else:
            await images.build_workspace(force=force)
            # The EMR node image of the newest release's Spark (clusters build others on use).
            spark = releases.releases()[0].spark
            await images.build_cluster(spark, force=force)
            tag = f"{images.workspace_image}, {cluster_image(spark)}"
    except ImageBuildError as exc:
        print(f"emustudio: {exc}", file=sys.stderr)
        return 1
    finally:
        docker.close()
    print(f"{tag} ready ({time.monotonic() - started:.0f} s)")
    return 0


def _az(settings: Settings, action: str, zone: str) -> int:
    """Tell the running gateway, through its operator API, to fail or restore a zone."""
    import boto3
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError

    from emustudio.aws.spec import DATA_PATH

    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(DATA_PATH))
    client = boto3.Session(botocore_session=session).client(
        "emustudio",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
    )
    call = client.fail_availability_zone if action == "fail" else client.restore_availability_zone
    try:
        result = call(ZoneName=zone)
    except (ClientError, BotoCoreError) as exc:
        print(f"emustudio: {exc}", file=sys.stderr)
        return 1
    touched = ", ".join(result.get("Workspaces", [])) or "none"
    print(f"{result['ZoneName']} is {result['State']}; Workspaces affected: {touched}")
    return 0


def _config(settings: Settings) -> int:
    for env, default, help_text in Settings.describe():
        print(f"{env:34} {default:28} {help_text}")
    return 0


def _hash_password() -> int:
    from emustudio.auth.idp import password_hash

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("emustudio: no password given", file=sys.stderr)
        return 2
    print(password_hash(password))
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
    up.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="set up the demo (the built-in IdP, IAM federation and the Demo Studio); on by"
        " default, --no-demo turns it off",
    )
    commands.add_parser("config", help="list every setting with its default")
    images = commands.add_parser("images", help="make the Workspace image")
    image_actions = images.add_subparsers(dest="images_command", required=True)
    image_actions.add_parser(
        "bootstrap", help="make emustudio/base:bookworm from the Debian mirror (no registry)"
    )
    image_actions.add_parser(
        "build",
        help="build the Workspace image and the EMR cluster image (bootstraps their base when"
        " none is available)",
    )
    for action in image_actions.choices.values():
        action.add_argument("--force", action="store_true", help="rebuild even if up to date")
    idp = commands.add_parser("idp", help="the built-in SAML IdP's users file")
    idp_actions = idp.add_subparsers(dest="idp_command", required=True)
    idp_actions.add_parser(
        "hash-password",
        help="print a password_hash for the users file (the password is read from the terminal,"
        " or from standard input)",
    )
    az = commands.add_parser("az", help="rehearse an Availability Zone outage")
    az_actions = az.add_subparsers(dest="az_command", required=True)
    for verb, text in (("fail", "mark a zone impaired"), ("restore", "end its outage")):
        az_actions.add_parser(verb, help=text).add_argument("zone", help="e.g. us-east-1a")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "idp":
        return _hash_password()
    settings = _settings(args)
    if args.command == "images":
        return asyncio.run(_images(settings, args.images_command, args.force))
    if args.command == "az":
        return _az(settings, args.az_command, args.zone)
    if args.command == "up":
        return asyncio.run(_up(settings))
    return _config(settings)


if __name__ == "__main__":
    raise SystemExit(main())
