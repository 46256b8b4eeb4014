"""The port rule every test and benchmark uses (bench/servers.py ``free_port``).

A port from the kernel's ephemeral range can be taken by an outgoing connection's local end
between the check and the server's bind; the rule picks below that range and checks the address
the server will bind.
"""

from __future__ import annotations

import socket

import pytest
from bench import servers


def test_ports_lie_below_the_ephemeral_range_and_are_bindable() -> None:
    low = servers._ephemeral_low()
    ports = [servers.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports), "a port was handed out twice"
    for port in ports:
        assert 1024 <= port < low
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()


def test_a_port_someone_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken, socket.socket() as probe:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        probe.bind(("127.0.0.1", 0))
        spare = probe.getsockname()[1]
        probe.close()
        offered = iter([held, held, spare])

        class Choice:
            def randrange(self, first: int, stop: int) -> int:
                return next(offered)

        monkeypatch.setattr(servers.random, "SystemRandom", Choice)
        monkeypatch.setattr(servers, "_handed_out", servers.deque(maxlen=16))
        assert servers.free_port() == spare


def test_the_address_the_server_binds_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[tuple[str, int]] = []

    def bindable(host: str, port: int) -> bool:
        checked.append((host, port))
        return True

    monkeypatch.setattr(servers, "_bindable", bindable)
    port = servers.free_port("10.0.0.1")
    assert {host for host, seen in checked if seen == port} == {"10.0.0.1", "127.0.0.1"}


def test_a_low_ephemeral_range_leaves_the_choice_to_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "_ephemeral_low", lambda: 1500)
    port = servers.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
