"""Start a MongoDB-wire server (mongoeco over SQLite) on loopback; runs under Python >= 3.13.

Usage: python server.py DB_FILE URI_FILE [PORT]
Writes ``mongodb://127.0.0.1:PORT`` to URI_FILE once it accepts connections; runs until killed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from mongoeco.engines import SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer


async def main(db_file: str, uri_file: str, port: int) -> None:
    server = AsyncMongoEcoProxyServer(engine=SQLiteEngine(db_file), host="127.0.0.1", port=port)
    address = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tmp = Path(uri_file + ".tmp")
    tmp.write_text(f"mongodb://{address.host}:{address.port}/?directConnection=true\n")
    tmp.replace(uri_file)
    await stop.wait()
    await server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0))
