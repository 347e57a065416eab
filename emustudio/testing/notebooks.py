"""Running a notebook as JupyterLab runs it, through a Workspace's Jupyter API: the notebook is
saved with the contents API, a session opens on it with its own kernelspec (``api/sessions``, so
an attached Workspace's kernel starts on the cluster), and each code cell goes over the kernel's
WebSocket as an ``execute_request``. The outputs come back in nbformat's shapes, cell by cell,
and the run stops at the first error, as "Run All" does.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

from tornado import httpclient, websocket

from emustudio.testing.backup import Workspace


def load(path: Path, replace: dict[str, str] | None = None) -> dict[str, Any]:
    """A notebook file, with its placeholders (``EXAMPLE-BUCKET``...) replaced."""
    text = path.read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    nb: dict[str, Any] = json.loads(text)
    return nb


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return "".join(text) if isinstance(text, list) else str(text)


def text_of(cell: dict[str, Any]) -> str:
    """What a user reads under a cell: its streams, results and errors, as plain text."""
    parts: list[str] = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "\n".join(parts)


def stdout_of(cell: dict[str, Any]) -> str:
    """What the cell printed (not the driver JVM's log lines, which go to stderr)."""
    return "".join(o["text"] for o in cell.get("outputs", []) if o.get("name") == "stdout")


def result_of(cell: dict[str, Any]) -> str:
    """The cell's value, as shown under it (``Out[n]``)."""
    return "".join(
        o["data"].get("text/plain", "")
        for o in cell.get("outputs", [])
        if o["output_type"] == "execute_result"
    )


def html_of(cell: dict[str, Any]) -> str:
    return "\n".join(
        out["data"]["text/html"]
        for out in cell.get("outputs", [])
        if out["output_type"] in ("execute_result", "display_data") and "text/html" in out["data"]
    )


class CellError(AssertionError):
    pass


def run(workspace: Workspace, path: str, nb: dict[str, Any], *, timeout: float = 900) -> Any:
    """Saves ``nb`` at ``path`` in the Workspace, runs it and returns it with its outputs."""
    return asyncio.run(_run(workspace, path, nb, timeout))


async def _run(workspace: Workspace, path: str, nb: dict[str, Any], timeout: float) -> Any:
    nb = copy.deepcopy(nb)
    workspace.save_notebook(path, nb)
    kernel = nb["metadata"]["kernelspec"]["name"]
    session = workspace.request(
        "POST", "api/sessions",
        {"path": path, "type": "notebook", "kernel": {"name": kernel}}, timeout=300,
    )  # fmt: skip
    conn = await _connect(workspace, session["kernel"]["id"])
    try:
        count = 0
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            count += 1
            cell["outputs"] = await _execute(conn, source(cell), timeout)
            cell["execution_count"] = count
            errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
            if errors:
                raise CellError(
                    f"cell {count} of {path} failed: {source(cell)[:200]!r}\n"
                    + "\n".join(f"{e['ename']}: {e['evalue']}" for e in errors)
                    + "\n"
                    + text_of(cell)[-3000:]
                )
    finally:
        conn.close()
        workspace.request("DELETE", f"api/sessions/{session['id']}")
    return nb


def open_kernel(workspace: Workspace, path: str, kernel: str = "pysparkkernel") -> str:
    """Opens a session on ``path`` with a new kernel of that kernelspec, as JupyterLab does when a
    notebook is opened (an attached Workspace's kernel starts on the cluster); the kernel's id."""
    session = workspace.request(
        "POST", "api/sessions",
        {"path": path, "type": "notebook", "kernel": {"name": kernel}}, timeout=300,
    )  # fmt: skip
    return str(session["kernel"]["id"])


def execute(workspace: Workspace, kernel_id: str, code: str, *, timeout: float = 600) -> str:
    """Runs ``code`` in a running kernel of the Workspace over a new kernel WebSocket (as
    JupyterLab does when it connects again) and returns its value as shown under the cell
    (``text/plain``); an error in the cell raises :class:`CellError`."""
    return asyncio.run(_execute_in(workspace, kernel_id, code, timeout))


async def _execute_in(workspace: Workspace, kernel_id: str, code: str, timeout: float) -> str:
    conn = await _connect(workspace, kernel_id)
    try:
        cell = {"outputs": await _execute(conn, code, timeout)}
    finally:
        conn.close()
    if errors := [o for o in cell["outputs"] if o["output_type"] == "error"]:
        raise CellError("\n".join(f"{e['ename']}: {e['evalue']}" for e in errors))
    return result_of(cell)


async def _connect(workspace: Workspace, kernel_id: str) -> Any:
    url = workspace.url(f"api/kernels/{kernel_id}/channels")
    return await websocket.websocket_connect(
        httpclient.HTTPRequest(
            url.replace("http", "ws", 1),
            headers={"Authorization": f"token {workspace.token}"},
        ),
        max_message_size=64 << 20,
    )


async def _execute(conn: Any, code: str, timeout: float) -> list[dict[str, Any]]:
    msg_id = uuid.uuid4().hex
    message = {
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }  # fmt: skip
    await conn.write_message(json.dumps(message))
    outputs: list[dict[str, Any]] = []
    # Done when the shell's reply and IOPub's "idle" have both come: the reply may overtake the
    # cell's last outputs, which travel on the other channel.
    replied = idle = False
    while not (replied and idle):
        raw = await asyncio.wait_for(conn.read_message(), timeout)
        if raw is None:
            raise CellError("the kernel's WebSocket closed")
        reply = json.loads(raw)
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = reply["header"]["msg_type"], reply["content"]
        if kind == "stream":
            if outputs and outputs[-1].get("name") == content["name"]:
                outputs[-1]["text"] += content["text"]
            else:
                outputs.append({"output_type": "stream", **content})
        elif kind in ("execute_result", "display_data"):
            outputs.append({"output_type": kind, "data": content["data"]})
        elif kind == "error":
            outputs.append({"output_type": "error", **content})
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and content.get("execution_state") == "idle":
            idle = True
    return outputs
