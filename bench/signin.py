"""Studio sign-in: what a SAML sign-in costs at the gateway, against an IAM user's password
sign-in to the same Studio, measured in the same run on this machine.

* **Baseline.** ``POST <Studio>/signin`` with an IAM user's name and password (the login
  profile's PBKDF2 check, the ``CreateStudioPresignedUrl`` decision, a session row): until the
  303 that sets the session cookie.
* **IAM federation.** ``POST /saml`` with a signed response of the built-in IdP (pysaml2 and
  ``xmlsec1`` verification, the replay cache, ``AssumeRoleWithSAML``'s trust check and
  credentials, the Studio permission): until the 303 to the Studio's handoff.
* **IAM Identity Center.** ``POST /sso/saml`` answering a fresh ``AuthnRequest`` (the same
  verification plus ``InResponseTo``, the Identity Store lookup, the session mappings, the user
  role's session): until the 303 to the handoff.

Responses are made and signed before the clock starts (the IdP's work is not the gateway's);
the three kinds alternate so that load on the machine falls on all alike. Each figure is the
median (and p90) of N sign-ins; the ratios are against the password sign-in.

    .venv/bin/python bench/signin.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from emustudio.auth.idp import BuiltinIdp, UsersFile
from emustudio.services.identitystore import identity_store_id
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import EMR_SERVICE, Users, allow, create_role, studio_arn
from emustudio.testing.pages import Browser
from emustudio.testing.vpc import make_studio_network, studio_args

PASSWORD = "Bench-Password-1"
OPEN = "elasticmapreduce:CreateStudioPresignedUrl"


def setup(gw: GatewayProcess, users_file: Path) -> dict[str, Any]:
    iam, emr = gw.client("iam"), gw.client("emr")
    net = make_studio_network(gw.client("ec2"), subnets=1)
    iam_studio = emr.create_studio(**studio_args(net, Name="bench-iam"))["StudioId"]
    sso_studio = emr.create_studio(
        **studio_args(
            net,
            Name="bench-sso",
            AuthMode="SSO",
            UserRole="arn:aws:iam::000000000000:role/BenchUserRole",
        )
    )["StudioId"]
    password_user = Users(gw).create(allow(OPEN, studio_arn(iam_studio)), password=PASSWORD)
    metadata = Browser(gw.port).get("localhost", "/idp/metadata").body
    provider = iam.create_saml_provider(Name="BenchIdp", SAMLMetadataDocument=metadata)[
        "SAMLProviderArn"
    ]
    federated = create_role(
        iam,
        "BenchFederated",
        {"Federated": provider},
        "sts:AssumeRoleWithSAML",
        allow(OPEN, studio_arn(iam_studio)),
    )
    create_role(
        iam, "BenchUserRole", EMR_SERVICE, "sts:AssumeRole", allow("elasticmapreduce:ListEditors")
    )
    session_policy = iam.create_policy(
        PolicyName="BenchSession",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [allow("elasticmapreduce:ListEditors")]}
        ),
    )["Policy"]["Arn"]
    store = identity_store_id("000000000000")
    user_id = gw.client("identitystore").create_user(
        IdentityStoreId=store,
        UserName="bench",
        DisplayName="Bench",
        Name={"GivenName": "Bench", "FamilyName": "Mark"},
    )["UserId"]
    emr.create_studio_session_mapping(
        StudioId=sso_studio,
        IdentityId=user_id,
        IdentityType="USER",
        SessionPolicyArn=session_policy,
    )
    users_file.write_text(
        yaml.safe_dump(
            {
                "users": {
                    "bench": {
                        "password": PASSWORD,
                        "roles": [{"role": federated, "provider": provider}],
                    }
                }
            }
        )
    )
    sp = Browser(gw.port).get("localhost", "/sso/saml/metadata").body
    idp = BuiltinIdp(
        UsersFile(users_file),
        gw.data_dir,  # the gateway's own IdP key: its responses are trusted
        base_url=f"http://localhost:{gw.port}",
        service_providers=(sp,),
    )
    return {
        "iam_studio": iam_studio,
        "sso_studio": sso_studio,
        "password_user": password_user,
        "idp": idp,
    }


def timed(post: Callable[[], Any]) -> float:
    start = time.perf_counter()
    response = post()
    elapsed = time.perf_counter() - start
    if response.status != 303:
        raise RuntimeError(f"sign-in failed ({response.status}): {response.body[:500]}")
    return elapsed


def password_sign_in(gw: GatewayProcess, s: dict[str, Any]) -> float:
    browser = Browser(gw.port)
    host = browser.host(s["iam_studio"])
    page = browser.get(host, "/signin")
    form = {"_xsrf": page.xsrf(), "username": s["password_user"], "password": PASSWORD}
    return timed(lambda: browser.post(host, "/signin", form))


def saml_sign_in(gw: GatewayProcess, s: dict[str, Any]) -> float:
    user = s["idp"].users.get("bench")
    form = {
        "SAMLResponse": s["idp"].response(user),
        "RelayState": f"http://{s['iam_studio'].lower()}.emrstudio.localhost:{gw.port}/",
    }
    browser = Browser(gw.port)
    return timed(lambda: browser.post("localhost", "/saml", form))


def identity_center_sign_in(gw: GatewayProcess, s: dict[str, Any]) -> float:
    browser = Browser(gw.port)
    redirect = browser.get(browser.host(s["sso_studio"]), "/signin")
    request = parse_qs(urlsplit(redirect.location).query)["SAMLRequest"][0]
    ask = s["idp"].parse_request(request)
    form = {"SAMLResponse": s["idp"].response_to(ask, s["idp"].users.get("bench"))}
    return timed(lambda: browser.post("localhost", "/sso/saml", form))


def summary(samples: list[float]) -> tuple[float, float]:
    p90 = statistics.quantiles(samples, n=10)[-1] if len(samples) > 1 else samples[0]
    return statistics.median(samples), p90


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with TemporaryDirectory(prefix="emustudio-bench-signin-") as tmp:
        users_file = Path(tmp) / "users.yaml"
        users_file.write_text("users: {}\n")
        gw = GatewayProcess(env={"EMUSTUDIO_IDP_USERS_FILE": str(users_file)})
        try:
            gw.start()
            s = setup(gw, users_file)
            kinds: dict[str, Callable[[GatewayProcess, dict[str, Any]], float]] = {
                "password (baseline)": password_sign_in,
                "IAM federation (/saml)": saml_sign_in,
                "Identity Center (/sso/saml)": identity_center_sign_in,
            }
            for kind in kinds.values():  # warm up: models, caches, the first xmlsec1 run
                kind(gw, s)
            load_before = os.getloadavg()[0]
            samples: dict[str, list[float]] = {name: [] for name in kinds}
            for _ in range(args.rounds):
                for name, kind in kinds.items():
                    samples[name].append(kind(gw, s))
            load_after = os.getloadavg()[0]
        finally:
            gw.close()
    base = summary(samples["password (baseline)"])[0]
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"load average 1 min: {load_before:.1f} before, {load_after:.1f} after")
    print(f"{args.rounds} sign-ins of each kind, alternating")
    print(f"{'sign-in':30} {'p50 ms':>8} {'p90 ms':>8} {'p50 / password':>15}")
    for name, values in samples.items():
        p50, p90 = summary(values)
        print(f"{name:30} {p50 * 1000:8.1f} {p90 * 1000:8.1f} {p50 / base:15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
