"""Minimal HTTP/1.1 over asyncio streams, shared by the bench's relay and fake_aws.

Enough for keep-alive clients (SDKs, curl, the AWS CLI): Content-Length and chunked
bodies, HEAD, 1xx/204/304 without a body, `Expect: 100-continue`, `Connection: close`.
Written on asyncio with a small parser because http.server costs about half a
millisecond of Python per request (email-style header parsing, a thread per
connection): at a thousand requests per listing, that was most of what a benchmark
through it measured.
"""

import asyncio

# Headers that describe one connection, not the message: never forwarded as they came.
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "expect"}
LIMIT = 1 << 20  # longest head accepted


class Message:
    """One request or response: its start line, headers in order, and body."""

    __slots__ = ("start", "headers", "body")

    def __init__(self, start, headers, body=b""):
        self.start, self.headers, self.body = start, headers, body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def keep_alive(self):
        return (self.header("Connection") or "").lower() != "close" and not self.start.endswith("HTTP/1.0")

    def encode(self):
        head = self.start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers) + "\r\n"
        return head.encode("latin-1") + self.body


async def read_head(reader):
    """(start line, headers), or None when the peer closed before sending anything."""
    try:
        data = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise
    lines = data[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return lines[0], headers


async def read_body(reader, msg, no_body=False):
    """The body of `msg` (a request, or a response with `no_body` for HEAD/1xx/204/304).
    Returns (body, until_close): a response with neither length nor chunking ends at EOF."""
    if no_body:
        return b"", False
    if "chunked" in (msg.header("Transfer-Encoding") or "").lower():
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return bytes(out), False
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    n = msg.header("Content-Length")
    if n is not None:
        return (await reader.readexactly(int(n)) if int(n) else b""), False
    if msg.start.startswith("HTTP/"):
        return await reader.read(), True
    return b"", False


async def read_request(reader, writer):
    """The next request on a connection, or None when the client is done. Answers
    `Expect: 100-continue` so a client waiting for it sends its body."""
    head = await read_head(reader)
    if head is None:
        return None
    msg = Message(*head)
    if (msg.header("Expect") or "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    msg.body, _ = await read_body(reader, msg)
    return msg


def with_length(headers, body, status=None, head_request=False):
    """`headers` without hop-by-hop ones, plus the Content-Length of `body` (kept as it
    came for a HEAD answer, whose body is absent)."""
    out = [(k, v) for k, v in headers if k.lower() not in HOP]
    if head_request:
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        if length is not None:
            out.append(("Content-Length", length))
    elif status not in (204, 304):
        out.append(("Content-Length", str(len(body))))
    return out


def serve(port, handle_connection):
    """Runs `handle_connection(reader, writer)` for every connection on 127.0.0.1:PORT."""

    async def main():
        # asyncio sets TCP_NODELAY on every accepted connection: no Nagle delays.
        server = await asyncio.start_server(handle_connection, "127.0.0.1", port, limit=LIMIT, backlog=256, reuse_address=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
