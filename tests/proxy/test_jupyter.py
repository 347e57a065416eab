"""Through the proxy into a real jupyter_server with JupyterLab and ipykernel."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import re
import uuid
from typing import Any

import pytest
from tornado import httpclient, websocket

from emustudio.proxy import Upstream
from tests.proxy.conftest import LAB, STUDIO, ProxyServer

API = f"/workspaces/{LAB}/api"
V1 = "v1.kernel.websocket.jupyter.org"


def test_token_is_injected(proxy: ProxyServer, jupyter: Upstream) -> None:
    direct = http.client.HTTPConnection(jupyter.host, jupyter.port, timeout=10)
    direct.request("GET", f"{API}/contents")
    assert direct.getresponse().status == 403
    direct.close()
    status, _, body = proxy.request("GET", f"{API}/contents")
    assert status == 200
    assert json.loads(body)["type"] == "directory"


def test_put_and_get_a_notebook(proxy: ProxyServer) -> None:
    notebook = {
        "type": "notebook",
        "format": "json",
        "content": {
            "cells": [{"cell_type": "code", "source": "1+1", "metadata": {}, "outputs": []}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
    }
    origin = {"Origin": f"http://{proxy.studio_host}", "Content-Type": "application/json"}
    body = json.dumps(notebook).encode()
    status, _, _ = proxy.request("PUT", f"{API}/contents/hello.ipynb", body=body, headers=origin)
    assert status == 201
    status, _, answer = proxy.request("GET", f"{API}/contents/hello.ipynb")
    assert status == 200
    assert json.loads(answer)["content"]["cells"][0]["source"] == "1+1"
    status, _, _ = proxy.request("DELETE", f"{API}/contents/hello.ipynb", headers=origin)
    assert status == 204


def to_v1(channel: str, parts: list[bytes]) -> bytes:
    """A message in the v1 kernel WebSocket protocol: offsets, channel, then the parts."""
    blobs = [channel.encode(), *parts]
    offsets = [8 * (len(blobs) + 2)]
    for blob in blobs:
        offsets.append(offsets[-1] + len(blob))
    words = [len(offsets), *offsets]
    return b"".join(n.to_bytes(8, "little") for n in words) + b"".join(blobs)


def from_v1(message: bytes) -> tuple[str, list[bytes]]:
    count = int.from_bytes(message[:8], "little")
    offsets = [int.from_bytes(message[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    blobs = [message[a:b] for a, b in itertools.pairwise(offsets)]
    return blobs[0].decode(), blobs[1:]


def execute_request(code: str, session: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": "test",
            "session": session,
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
        },
        "channel": "shell",
        "buffers": [],
    }


@pytest.fixture(scope="module")
def kernel(proxy: ProxyServer) -> Any:
    origin = {"Origin": f"http://{proxy.studio_host}"}
    status, _, body = proxy.request(
        "POST", f"{API}/kernels", body=b'{"name": "python3"}', headers=origin
    )
    assert status == 201, body
    kernel_id = json.loads(body)["id"]
    yield kernel_id
    proxy.request("DELETE", f"{API}/kernels/{kernel_id}", headers=origin)


async def open_channels(
    proxy: ProxyServer, kernel_id: str, subprotocols: list[str] | None = None
) -> websocket.WebSocketClientConnection:
    request = httpclient.HTTPRequest(
        f"ws://127.0.0.1:{proxy.port}{API}/kernels/{kernel_id}/channels?session_id=s1",
        headers={"Host": proxy.studio_host, "Origin": f"http://{proxy.studio_host}"},
        connect_timeout=30,
        request_timeout=30,
    )
    return await websocket.websocket_connect(request, subprotocols=subprotocols)


def test_kernel_executes_through_the_proxy(proxy: ProxyServer, kernel: str) -> None:
    async def test() -> None:
        ws = await open_channels(proxy, kernel)
        request = execute_request("1+1", "s1")
        await ws.write_message(json.dumps(request))
        result, reply = None, None
        while result is None or reply is None:
            raw = await ws.read_message()
            assert isinstance(raw, str)
            message = json.loads(raw)
            if message["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                continue
            if message["msg_type"] == "execute_result":
                result = message["content"]["data"]["text/plain"]
            if message["msg_type"] == "execute_reply":
                reply = message["content"]["status"]
        assert (result, reply) == ("2", "ok")
        ws.close()

    asyncio.run(asyncio.wait_for(test(), 60))


def test_kernel_binary_protocol_through_the_proxy(proxy: ProxyServer, kernel: str) -> None:
    async def test() -> None:
        ws = await open_channels(proxy, kernel, subprotocols=[V1])
        assert ws.selected_subprotocol == V1
        request = execute_request("6*7", "s1")
        parts = [
            json.dumps(request[key]).encode()
            for key in ("header", "parent_header", "metadata", "content")
        ]
        await ws.write_message(to_v1("shell", parts), binary=True)
        while True:
            raw = await ws.read_message()
            assert isinstance(raw, bytes)
            channel, msg_list = from_v1(raw)
            header, parent, _, content = (json.loads(part) for part in msg_list[:4])
            mine = parent.get("msg_id") == request["header"]["msg_id"]
            if mine and header["msg_type"] == "execute_result":
                assert channel == "iopub"
                assert content["data"]["text/plain"] == "42"
                break
        ws.close()

    asyncio.run(asyncio.wait_for(test(), 60))


def lab_page(proxy: ProxyServer, path: str, host: str) -> tuple[str, dict[str, Any]]:
    status, headers, body = proxy.request("GET", path, host=host)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/html")
    html = body.decode()
    config = re.search(r'<script id="jupyter-config-data"[^>]*>(.*?)</script>', html, re.S)
    assert config is not None
    return html, json.loads(config.group(1))


@pytest.mark.parametrize("form", ["host", "path"])
def test_jupyterlab_page_and_its_assets_load(
    proxy: ProxyServer, jupyter: Upstream, form: str
) -> None:
    if form == "host":
        host, entry = proxy.studio_host, f"/workspaces/{LAB}/lab"
    else:
        host, entry = f"127.0.0.1:{proxy.port}", f"/studios/{STUDIO}/workspaces/{LAB}/lab"
    html, config = lab_page(proxy, entry, host)
    assert jupyter.token not in html
    assert config["token"] == ""
    assert config["baseUrl"] == f"/workspaces/{LAB}/"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith(".js") or ".js?" in asset for asset in assets)
    for url in [*assets, f"{config['baseUrl']}api/status", f"{config['baseUrl']}lab/api/settings"]:
        assert url.startswith(f"/workspaces/{LAB}/"), url  # absolute: the bare form serves it
        status, _, _ = proxy.request("GET", url, host=host)
        assert status == 200, url


def test_jupyter_redirects_stay_below_the_prefix(proxy: ProxyServer) -> None:
    status, headers, _ = proxy.request("GET", f"/workspaces/{LAB}/lab/")
    assert (status, headers["Location"]) == (301, f"/workspaces/{LAB}/lab")
