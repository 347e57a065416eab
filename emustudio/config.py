"""Settings, declared once.

Every setting is a field of :class:`Settings` with its type, default and help text. Values come
from, in order of precedence: explicit overrides (the CLI), ``EMUSTUDIO_<NAME>`` environment
variables, an optional YAML file (``EMUSTUDIO_CONFIG`` or ``--config``), then the default.
Nothing reads the environment at import: :meth:`Settings.load` takes ``environ`` as a parameter
and the resulting frozen object is passed down.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

_HOME_DATA = Path("~/.emustudio")
# The demo's users of the built-in IdP, in data_dir, when idp_users_file is not set.
DEMO_USERS_FILE = "idp-users.yaml"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(_HOME_DATA, "Where the SQLite store and the instance id live.")
    host: str = _setting("127.0.0.1", "Address the gateway listens on.")
    port: int = _setting(8080, "Port the gateway listens on (the AWS endpoint and Studio URLs).")
    region: str = _setting("us-east-1", "The AWS region the gateway plays.")
    account_id: str = _setting("000000000000", "The AWS account id of every resource.")
    access_key_id: str = _setting("test", "Root access key id (bypasses IAM policies).")
    secret_access_key: str = _setting("test", "Root secret access key.")
    other_accounts: str = _setting(
        "",
        "Further accounts, comma-separated <account id>:<root access key id>:<root secret>."
        " Each has its own IAM and STS (kept in data_dir/account-<id>.db) and owns the S3"
        " buckets its principals create: enough for cross-account bucket policies. Only IAM,"
        " STS and S3 answer them.",
    )
    store_url: str | None = _setting(
        None, "SQLAlchemy URL of the store; default a SQLite file in data_dir."
    )
    studio_domain: str = _setting(
        "emrstudio.localhost", "Studio URLs are http://<studio-id>.<studio_domain>:<port>."
    )
    public_port: int | None = _setting(
        None, "Port shown in Studio URLs when it differs from port (behind compose)."
    )
    docker_url: str | None = _setting(
        None, "Docker API URL; default from DOCKER_HOST or the local socket."
    )
    instance_id: str | None = _setting(
        None, "Labels every Docker object of this gateway; default generated once per data_dir."
    )
    network_remap: bool = _setting(
        False,
        "When a subnet CIDR is taken on the Docker host, give its network a free CIDR from"
        " network_remap_pool instead of failing.",
    )
    network_remap_pool: str = _setting("10.192.0.0/10", "Where remapped subnet networks go.")
    enforce_security_groups: Literal["auto", "on", "off"] = _setting(
        "auto",
        "Enforce EC2 security groups between the containers of a subnet network (iptables; needs"
        " root or CAP_NET_ADMIN in the Docker host's network namespace). auto: when it can, else"
        " a warning at start; on: start fails without it; off: any two containers of a subnet"
        " reach each other.",
    )
    gateway_container: str | None = _setting(
        None,
        "Name or id of the container the gateway runs in (docker compose); that container joins"
        " every subnet network so it reaches Workspaces. Default: the gateway runs on the host.",
    )
    max_request_bytes: int = _setting(
        1_048_576, "Largest AWS API request body accepted (AWS rejects larger ones too)."
    )
    list_page_size: int = _setting(50, "Items per page of EMR List* operations.")
    max_studios: int = _setting(100, "Studios per account (the AWS service quota).")
    workspace_idle_timeout: float = _setting(
        3600.0, "Seconds without use after which a Workspace is stopped (0: never)."
    )
    workspace_image: str | None = _setting(
        None, "Image of Workspace containers; default emustudio/workspace:<version>."
    )
    workspace_base_image: str = _setting(
        "python:3.11-slim-bookworm",
        "Base of the Workspace image; when absent and not pullable, emustudio/base:bookworm"
        " is bootstrapped from debian_mirror instead.",
    )
    workspace_base_pull: bool = _setting(
        False,
        "Try to pull workspace_base_image from its registry when it is not present locally"
        " (off by default: emustudio assumes no registry; a locally present image is used).",
    )
    debian_mirror: str = _setting(
        "http://deb.debian.org/debian", "Debian mirror for `emustudio images bootstrap`."
    )
    workspace_memory: str = _setting("2g", "Memory limit of a Workspace container (Docker units).")
    workspace_cpus: float = _setting(1.0, "CPUs of a Workspace container (may be fractional).")
    workspace_pool_size: int = _setting(
        1,
        "Warm Workspace containers kept per Studio subnet (JupyterLab imported, no user, token or"
        " files until a start claims one: Ready in well under a second). 0: no pool.",
    )
    cluster_engine: Literal["docker", "standalone"] = _setting(
        "docker",
        "What runs EMR clusters: docker (one container per EC2 instance on the cluster's subnet"
        " network: Spark standalone, its history server and Jupyter Enterprise Gateway);"
        " standalone (the master node's container only, its Spark drivers running their"
        " executors on the existing Spark standalone master standalone_master_url, reached"
        " through standalone_network).",
    )
    standalone_master_url: str = _setting(
        "",
        "spark://host:port of the existing Spark standalone master whose workers run the"
        " executors of every cluster (cluster_engine standalone).",
    )
    standalone_network: str = _setting(
        "",
        "Docker network (made by you, not emustudio) on which the standalone master and its"
        " workers reach a cluster's master node: each master node joins it, and its Spark"
        " drivers advertise their address on it (spark.driver.host) for the executors to call"
        " back. Across machines: a macvlan or ipvlan network on the workers' LAN, or an"
        " attachable overlay (cluster_engine standalone).",
    )
    cluster_node_memory_mib: int = _setting(
        1536,
        "Memory limit (MiB) of one cluster node's container; an instance type with less gets"
        " its own. Spark's workers still advertise the instance type's memory and vCPUs.",
    )
    cluster_node_cpus: float = _setting(1.0, "CPU limit of one cluster node's container.")
    cluster_max_nodes: int = _setting(5, "Most instances one cluster may have (RunJobFlow).")
    metadata_port: int = _setting(
        16925,
        "Port of the instance metadata service (a cluster node's instance-profile credentials),"
        " served only on the subnet networks' gateway addresses.",
    )
    cluster_start_timeout: float = _setting(
        300.0, "Seconds a cluster's nodes may take to become ready before it fails to start."
    )
    workspace_start_timeout: float = _setting(
        120.0, "Seconds a Workspace container may take to become healthy before start fails."
    )
    workspace_stop_timeout: int = _setting(
        5, "Seconds a Workspace server gets to shut down on stop before it is killed."
    )
    workspace_ready_poll: float = _setting(
        0.05,
        "Seconds between the gateway's probes of a starting Workspace (GET .../emustudio/ready"
        " at its address; a refused connection costs microseconds). Once it answers it is never"
        " probed again: liveness comes from Docker's events.",
    )
    cookie_secret: str | None = _setting(
        None,
        "Key that signs the Studio sign-in cookies; default generated once and kept in"
        " data_dir/cookie-secret, so sessions outlive a gateway restart.",
    )
    idp_users_file: Path | None = _setting(
        None,
        "YAML users file of the built-in SAML IdP (users, passwords, groups, AWS roles and"
        " attributes; see examples/idp-users.yaml). Set, the gateway serves /idp/ (metadata,"
        " login, portal, sso); its signing key and certificate are made once in data_dir"
        " (idp-key.pem, mode 600; idp-cert.pem).",
    )
    demo: bool = _setting(
        False,
        "Set up the demo at start (on by default with `emustudio up`; --no-demo turns it off):"
        " the built-in IdP (data_dir/idp-users.yaml, a copy of examples/idp-users.yaml, unless"
        " idp_users_file is set), the SAML provider EmuStudioIdp, roles StudioAnalyst and"
        " StudioAdmin, and an IAM-mode Studio named Demo that signs in through the IdP. Only what"
        " is missing is made, so restarts keep changes.",
    )
    idc_idp_metadata_file: Path | None = _setting(
        None,
        "SAML metadata (XML file) of the external IdP that IAM Identity Center trusts, for"
        " SSO-mode Studios; default the built-in IdP when idp_users_file is set. Identity Center"
        " matches the IdP's NameID to an Identity Store UserName.",
    )
    session_hours: float = _setting(
        12.0, "Hours a Studio sign-in lasts (AWS console sessions of IAM users last 12)."
    )
    proxy_fast_path: bool = _setting(
        True,
        "Proxy a Workspace's remembered bodiless GET/HEAD requests without a Tornado"
        " handler (emustudio/proxy/fast.py); off: every request takes the handler.",
    )
    s3_endpoint_url: str | None = _setting(
        None,
        "S3 endpoint the Workspace backups go to (MinIO, AWS S3...); default an S3 server"
        " emustudio runs itself on 127.0.0.1 (rclone serve s3), data in data_dir/s3.",
    )
    s3_access_key_id: str | None = _setting(
        None,
        "Access key id for s3_endpoint_url; for the embedded server, default generated once"
        " and kept in data_dir/s3.json (mode 600). Only the gateway holds it.",
    )
    s3_secret_access_key: str | None = _setting(None, "Secret access key for S3 (as above).")
    s3_region: str = _setting("us-east-1", "Region S3 requests are signed for.")
    s3_port: int | None = _setting(
        None, "Port of the embedded S3 server; default a free port, kept in data_dir/s3.json."
    )
    s3_default_bucket: str = _setting("emustudio", "Bucket created at start.")
    s3_virtual_host_domain: str = _setting(
        "localhost",
        "The gateway's S3 API takes virtual-hosted requests to http://<bucket>.<this>:<port>"
        " (path-style requests always work).",
    )
    s3_directory_markers: bool | None = _setting(
        None,
        "Store keys ending in '/' (directory markers, as Hadoop's S3A writes them) under a"
        " hidden name and show them back as S3 does; default: with the embedded server only,"
        " whose file-system store cannot hold them.",
    )
    s3_create_buckets: bool | None = _setting(
        None,
        "Create a bucket named by a Studio's or Workspace's S3 location on its first write;"
        " default: with the embedded server only (on AWS the bucket must exist).",
    )
    backup_sweep_seconds: float = _setting(
        60.0,
        "Seconds between sweeps that compare each running Workspace's files with their last"
        " backup (catching changes no save event reported, such as files written by code).",
    )
    backup_debounce_seconds: float = _setting(
        0.5,
        "Adaptive debounce: a file saved after this many seconds of quiet is uploaded at once;"
        " one saved again within them is uploaded once at the end of the window, latest content.",
    )
    backup_restore_timeout: float = _setting(
        120.0,
        "Seconds a starting Workspace waits for S3 (down) to restore its files before the start"
        " fails.",
    )
    backup_flush_timeout: float = _setting(
        120.0,
        "Seconds a stopping Workspace waits for its unsaved changes to be read into the backup"
        " (uploaded, or kept on disk while S3 is down) before its container goes.",
    )

    def parsed_other_accounts(self) -> list[tuple[str, str, str]]:
        """``other_accounts`` as (account id, access key id, secret) triples."""
        found: list[tuple[str, str, str]] = []
        for entry in filter(None, (e.strip() for e in self.other_accounts.split(","))):
            account_id, _, rest = entry.partition(":")
            key, _, secret = rest.partition(":")
            if not (account_id.isdigit() and len(account_id) == 12 and key and secret):
                raise ValueError(
                    f"other_accounts: {entry!r} is not <12-digit account id>:<key id>:<secret>"
                )
            if account_id == self.account_id or key == self.access_key_id:
                raise ValueError(f"other_accounts: {account_id} repeats the gateway's own account")
            found.append((account_id, key, secret))
        return found

    def standalone_master(self) -> tuple[str, str]:
        """``(standalone_master_url, standalone_network)``, checked: the standalone engine
        needs both."""
        url, network = self.standalone_master_url.strip(), self.standalone_network.strip()
        host, _, port = url.removeprefix("spark://").rpartition(":")
        if not (url.startswith("spark://") and host and port.isdigit()):
            raise ValueError(
                f"standalone_master_url: {url!r} is not spark://<host>:<port>"
                " (cluster_engine standalone needs it)"
            )
        if not network:
            raise ValueError(
                "standalone_network: cluster_engine standalone needs the Docker network on which"
                " the standalone master's workers reach the clusters' master nodes"
            )
        return url, network

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "emustudio.db"

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite:///{self.sqlite_path}"

    @property
    def endpoint_url(self) -> str:
        host = "localhost" if self.host in ("0.0.0.0", "127.0.0.1", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def url_port(self) -> int:
        return self.public_port or self.port

    def resolved_instance_id(self) -> str:
        """The instance id: configured, or created once and kept in data_dir."""
        if self.instance_id:
            return self.instance_id
        path = self.data_dir / "instance-id"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(4)
        path.write_text(value + "\n")
        return value

    def resolved_cookie_secret(self) -> str:
        """The cookie-signing key: configured, or created once and kept in data_dir (mode 600)."""
        if self.cookie_secret:
            return self.cookie_secret
        path = self.data_dir / "cookie-secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return value

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str],
        *,
        config_file: Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Settings:
        # ``defaults`` replace the fields' defaults (a command's own, such as `up`'s demo=True);
        # the file, the environment and the overrides still win over them.
        values: dict[str, Any] = dict(defaults or {})
        path = config_file or (
            Path(environ["EMUSTUDIO_CONFIG"]) if environ.get("EMUSTUDIO_CONFIG") else None
        )
        if path is not None:
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: expected a mapping of settings")
            values.update(loaded)
        for f in dataclasses.fields(cls):
            env_name = f"EMUSTUDIO_{f.name.upper()}"
            if env_name in environ:
                values[f.name] = environ[env_name]
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        hints = get_type_hints(cls)
        settings = cls(**{k: _coerce(k, hints[k], v) for k, v in values.items()})
        home = environ.get("HOME")
        data_dir = Path(str(settings.data_dir).replace("~", home, 1) if home else settings.data_dir)
        settings = dataclasses.replace(settings, data_dir=data_dir.expanduser().absolute())
        if settings.demo and settings.idp_users_file is None:
            # The demo turns the built-in IdP on with its own users file (emustudio/demo.py
            # writes it at start, before the IdP is first asked for a user).
            settings = dataclasses.replace(
                settings, idp_users_file=settings.data_dir / DEMO_USERS_FILE
            )
        return settings

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(environment variable, default, help) for every setting, for docs and --help."""
        return [
            (f"EMUSTUDIO_{f.name.upper()}", repr(f.default), f.metadata["help"])
            for f in dataclasses.fields(cls)
        ]


def _coerce(name: str, hint: Any, value: Any) -> Any:
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType):
        if value is None or value == "":
            return None
        hint = next(a for a in args if a is not type(None))
    if get_origin(hint) is Literal:  # a choice among names
        if value not in get_args(hint):
            choices = ", ".join(str(a) for a in get_args(hint))
            raise ValueError(f"setting {name}: {value!r} is not one of {choices}")
        return value
    if isinstance(value, hint):
        return value
    try:
        if hint is bool:
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return hint(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting {name}: cannot read {value!r} as {hint.__name__}") from exc
