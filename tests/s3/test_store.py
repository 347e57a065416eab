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


async def test_chunked_and_large_answers_arrive_whole_on_one_kept_connection() -> None:
    """A chunked answer (as Go's server sends a listing) and a 5 MB one, read slowly: the
    client holds at most about a megabyte of it at a time and reuses the connection."""
    big = bytes(range(256)) * (5 * 4096)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"6\r\nhello \r\n5;ext=1\r\nworld\r\n0\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        await writer.drain()
        await reader.read()  # until the client closes

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = StoreClient(f"http://127.0.0.1:{port}", "key", "secret")
    try:
        first = await asyncio.wait_for(client.send("GET", "/bucket?list-type=2"), timeout=10)
        assert await first.read() == b"hello world"
        second = await asyncio.wait_for(client.send("GET", "/bucket/big"), timeout=10)
        pieces = []
        async for piece in second.body():
            pieces.append(piece)
            assert second._connection.reader.size <= 2 * 1024 * 1024
            await asyncio.sleep(0.002)  # a slow reader
        assert b"".join(pieces) == big and connections == 1
    finally:
        for connection in client.idle:
            connection.close()
        server.close()
        await server.wait_closed()


async def test_an_answer_that_comes_in_pieces_is_read_whole() -> None:
    """The head split inside a line and inside its end, the body a byte at a time."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for part in (b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 3\r\n\r", b"\n", b"o", b"k", b"!"):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = StoreClient(f"http://127.0.0.1:{port}", "key", "secret")
    try:
        response = await asyncio.wait_for(client.send("GET", "/bucket/key"), timeout=10)
        assert (response.status, response.headers["content-length"]) == (200, "3")
        assert await asyncio.wait_for(response.read(), timeout=10) == b"ok!"
    finally:
        server.close()
        await server.wait_closed()
