#!/usr/bin/python3
"""A python-websockets (Debian python3-websockets 10.4, asyncio API) peer,
remote-controlled by lifeline's interop tests (test/interop/python-websockets.test.ts).

    py_websockets_peer.py server [--compression deflate|none] [--tls CERT KEY]
    py_websockets_peer.py client

--tls serves wss:// with that certificate and key (PEM).

Reads one JSON command per line on stdin and writes one JSON event per line on
stdout. Exits when stdin closes. Commands ("id" names a connection):

    {"op": "connect", "url": ..., "compression": "deflate"|null, "ca": PEM path}   (client mode;
        "ca": trust that certificate for wss://, verifying it as Python's default context does)
    {"op": "send", "id": N, "text": ...} | {"op": "send", "id": N, "b64": ...}
    {"op": "send_random", "id": N, "size": BYTES}      random binary; reports its sha256
    {"op": "send_fragments", "id": N, "text": [...]} | {..., "b64": [...]}   one frame per item
    {"op": "ping", "id": N, "b64": ...}                reports "pong" when answered
    {"op": "close", "id": N, "code": C, "reason": R}
    {"op": "raw", "id": N, "b64": ...}                 bytes straight onto the TCP stream

Events: listening {port}; open {id, extensions, subprotocol, path};
message {id, binary, len, sha256, text|b64 (when short)}; sent {id, len, sha256};
pong {id}; closed {id, code, reason}; error {op, message}.
"""

import asyncio
import base64
import hashlib
import json
import os
import ssl
import sys

import websockets

SHORT = 65536

conns = {}
next_id = 0


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def describe(data):
    if isinstance(data, str):
        raw = data.encode("utf-8")
        d = {"binary": False}
        if len(raw) <= SHORT:
            d["text"] = data
    else:
        raw = bytes(data)
        d = {"binary": True}
        if len(raw) <= SHORT:
            d["b64"] = base64.b64encode(raw).decode("ascii")
    d["len"] = len(raw)
    d["sha256"] = hashlib.sha256(raw).hexdigest()
    return d


def header_value(headers, name):
    try:
        values = headers.get_all(name)
    except Exception:
        return None
    return ", ".join(values) if values else None


async def run_connection(ws, path):
    global next_id
    next_id += 1
    cid = next_id
    conns[cid] = ws
    emit(
        event="open",
        id=cid,
        path=path,
        subprotocol=ws.subprotocol,
        extensions=[e.name for e in ws.extensions],
        extensions_header=header_value(ws.response_headers, "Sec-WebSocket-Extensions"),
    )
    try:
        async for message in ws:
            emit(event="message", id=cid, **describe(message))
    except websockets.ConnectionClosed:
        pass
    except Exception as exc:  # report, never hang the test
        emit(event="error", op="recv", id=cid, message=repr(exc))
    await ws.wait_closed()
    sent = ws.close_sent
    emit(
        event="closed",
        id=cid,
        code=ws.close_code,
        reason=ws.close_reason,
        sent_code=sent.code if sent is not None else None,
        sent_reason=sent.reason if sent is not None else None,
    )


async def wait_pong(cid, waiter):
    try:
        await waiter
        emit(event="pong", id=cid)
    except Exception as exc:
        emit(event="error", op="ping", id=cid, message=repr(exc))


async def do_close(ws, code, reason):
    try:
        await ws.close(code, reason)
    except Exception as exc:
        emit(event="error", op="close", message=repr(exc))


async def handle(cmd, compression_default, background):
    op = cmd.get("op")
    if op == "connect":
        compression = cmd.get("compression", compression_default)
        extra = {}
        if cmd.get("ca"):
            extra["ssl"] = ssl.create_default_context(cafile=cmd["ca"])
        try:
            ws = await websockets.connect(
                cmd["url"],
                **extra,
                compression=compression,
                max_size=None,
                ping_interval=None,
                close_timeout=10,
                subprotocols=cmd.get("subprotocols"),
            )
        except Exception as exc:
            emit(event="connect_error", message=repr(exc))
            return
        background.add(asyncio.ensure_future(run_connection(ws, ws.path)))
        return
    ws = conns.get(cmd.get("id"))
    if ws is None:
        emit(event="error", op=op, message="no such connection %r" % cmd.get("id"))
        return
    cid = cmd["id"]
    if op == "send":
        data = cmd["text"] if "text" in cmd else base64.b64decode(cmd["b64"])
        await ws.send(data)
        emit(event="sent", id=cid, **describe(data))
    elif op == "send_random":
        data = os.urandom(int(cmd["size"]))
        await ws.send(data)
        emit(event="sent", id=cid, binary=True, len=len(data), sha256=hashlib.sha256(data).hexdigest())
    elif op == "send_fragments":
        if "text" in cmd:
            parts = list(cmd["text"])
            whole = "".join(parts)
        else:
            parts = [base64.b64decode(p) for p in cmd["b64"]]
            whole = b"".join(parts)
        await ws.send(parts)  # an iterable: one frame per item (websockets docs, "fragmentation")
        emit(event="sent", id=cid, fragments=len(parts), **describe(whole))
    elif op == "ping":
        waiter = await ws.ping(base64.b64decode(cmd.get("b64", "")))
        background.add(asyncio.ensure_future(wait_pong(cid, waiter)))
    elif op == "close":
        background.add(asyncio.ensure_future(do_close(ws, int(cmd.get("code", 1000)), cmd.get("reason", ""))))
    elif op == "raw":
        ws.transport.write(base64.b64decode(cmd["b64"]))
        emit(event="raw_sent", id=cid)
    else:
        emit(event="error", op=op, message="unknown op")


async def command_loop(compression_default):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    background = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            await handle(cmd, compression_default, background)
        except Exception as exc:
            emit(event="error", op="command", message=repr(exc))
        background = {t for t in background if not t.done()}
    for ws in list(conns.values()):
        ws.transport.abort()
    for t in background:
        t.cancel()


async def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "server"
    compression = "deflate"
    if "--compression" in sys.argv:
        value = sys.argv[sys.argv.index("--compression") + 1]
        compression = None if value == "none" else value
    extra = {}
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
        extra["ssl"] = context
    if mode == "server":

        async def handler(ws):
            await run_connection(ws, ws.path)

        async with websockets.serve(
            handler,
            "127.0.0.1",
            0,
            **extra,
            compression=compression,
            max_size=None,
            ping_interval=None,
            close_timeout=10,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            emit(event="listening", port=port, version=websockets.__version__)
            await command_loop(compression)
            server.close()
    else:
        emit(event="ready", version=websockets.__version__)
        await command_loop(compression)


if __name__ == "__main__":
    asyncio.run(main())
