"""A TCP proxy for tests that can turn into a black hole: bytes go in, nothing comes out.

In black-hole mode the proxy keeps accepting connections and reading from both sides but
forwards nothing, which is what a client sees when a database host silently drops packets
(no reset, no answer). ``restore`` forwards again on new connections.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class BlackholeProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.blackholed = threading.Event()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def blackhole(self) -> None:
        self.blackholed.set()

    def restore(self) -> None:
        self.blackholed.clear()
        with self._lock:  # connections cut during the black hole stay dead, as after a real cut
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.restore()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    if not self.blackholed.is_set():
                        key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
