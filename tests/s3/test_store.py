"""The client of the store behind S3: a kept connection the store has closed is not waited on."""

from __future__ import annotations

import asyncio

from emustudio.s3.store import StoreClient

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


async def test_a_kept_connection_closed_by_the_store_is_replaced() -> None:
    """The store answers each connection once, keep-alive promised, then closes it, as a
    store ending an idle connection does. The next request goes out on the kept connection,
    meets its end before any answer, and is sent again on a fresh one."""
    served = 0

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.readuntil(b"\r\n\r\n")
        served += 1
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = StoreClient(f"http://127.0.0.1:{port}", "key", "secret")
    try:
        for _ in range(3):
            response = await asyncio.wait_for(client.send("GET", "/bucket/key"), timeout=10)
            assert (response.status, await response.read()) == (200, b"ok")
            await asyncio.sleep(0.05)  # the store's close arrives while the connection idles
        assert served == 3
    finally:
        server.close()
        await server.wait_closed()
