"""A small LAN of network namespaces: endpoint nodes as separate machines would be, on one host.

Each node is a network namespace with a veth pair whose other end sits in a bridge in the root
namespace; the bridge holds the "LAN" address of the root namespace (``.1``), the nodes get
``.2``, ``.3``, ... of the same /24 under 10.77.0.0/16 (a subnet no interface on the host uses).
So every node has an address of its own, and the root namespace (load generator, PostgreSQL
relay, a partner endpoint) is one address that all nodes reach.

PostgreSQL listens on 127.0.0.1 only and its configuration is not ours to change: a namespace
cannot reach the root namespace's loopback, so ``pg_relay`` runs bench/pgrelay.py in the root
namespace, listening on the bridge address and forwarding to the real server.

Needs root (CAP_NET_ADMIN) and iproute2; ``unavailable()`` says why not when either is missing.
Everything made is removed again in ``finally``, also when a step fails half-way.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.common import DEV_CERTS, PROJECT_ROOT
from ggk_ebms.testing.pki import IssuedCertificate, issue_server_certificate

_PREFIX: Final = "10.77"


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, or a container forbids it)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def unavailable() -> str | None:
    """None when namespaces can be made here, else the reason (for a skip or a bench note)."""
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"ggk-probe-{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"'ip netns add' is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Node:
    """One namespace: its name and its own address on the LAN."""

    namespace: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this node's namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass(frozen=True)
class Lan:
    host_address: str  # the root namespace's address on the bridge
    nodes: tuple[Node, ...]


def _free_subnet() -> int:
    """A third octet under 10.77 that no address on this host uses (another run may hold one)."""
    used = _ip("-o", "-4", "addr", "show").stdout
    choices = list(range(1, 255))
    random.shuffle(choices)
    for octet in choices:
        if f" {_PREFIX}.{octet}." not in used:
            return octet
    raise NetnsUnavailable(f"no free /24 left under {_PREFIX}.0.0/16")


@contextmanager
def lan(count: int) -> Iterator[Lan]:
    """``count`` namespaces on one bridge; all of it removed on exit."""
    if count < 1 or count > 200:
        raise ValueError("between 1 and 200 nodes")
    tag = uuid.uuid4().hex[:5]
    bridge = f"gkb{tag}"  # interface names: at most 15 characters
    namespaces: list[str] = []
    host_ends: list[str] = []
    try:
        octet = _free_subnet()
        host_address = f"{_PREFIX}.{octet}.1"
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{host_address}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        nodes: list[Node] = []
        for n in range(count):
            namespace = f"ggk-{tag}-{n}"
            host_end, node_end = f"gkh{tag}{n}", f"gkn{tag}{n}"
            _ip("netns", "add", namespace)
            namespaces.append(namespace)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
            host_ends.append(host_end)
            _ip("link", "set", node_end, "netns", namespace)
            _ip("link", "set", host_end, "master", bridge)
            _ip("link", "set", host_end, "up")
            address = f"{_PREFIX}.{octet}.{n + 2}"
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", node_end)
            _ip("-n", namespace, "link", "set", node_end, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            nodes.append(Node(namespace, address))
        yield Lan(host_address, tuple(nodes))
    finally:
        for namespace in namespaces:
            _ip("netns", "del", namespace, check=False)  # takes its veth end, and so the pair
        for host_end in host_ends:
            _ip("link", "del", host_end, check=False)  # already gone unless the move failed
        _ip("link", "del", bridge, check=False)


# --- the PostgreSQL relay ----------------------------------------------------------------------------


def wait_listening(
    host: str, port: int, *, alive: subprocess.Popen[bytes], timeout: float, what: str
) -> None:
    """Return once ``host:port`` accepts a connection; raise when the process dies or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive.poll() is not None:
            raise RuntimeError(f"{what} exited early (status {alive.returncode})")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout} s")


@contextmanager
def pg_relay(listen: str, target_host: str, target_port: int, log: Path) -> Iterator[tuple[int, int]]:
    """bench/pgrelay.py on ``listen`` (a free port) forwarding to the real PostgreSQL.

    Yields (port, pid); the pid lets a benchmark read the relay's CPU time from /proc.
    """
    with socket.socket() as s:
        s.bind((listen, 0))
        port: int = s.getsockname()[1]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
    argv = [
        sys.executable, "-m", "bench.pgrelay",
        "--listen", listen, "--port", str(port), "--to", f"{target_host}:{target_port}",
    ]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT)
    try:
        wait_listening(listen, port, alive=proc, timeout=30, what="PostgreSQL relay")
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- certificates for the nodes' addresses ------------------------------------------------------------


def _dev_ca() -> IssuedCertificate:
    certificate = x509.load_pem_x509_certificate((DEV_CERTS / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((DEV_CERTS / "ca-key.pem").read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise RuntimeError("the dev CA key is not an RSA key")
    return IssuedCertificate(certificate, key)


def server_certificate(folder: Path, *, oin: str, addresses: Sequence[str]) -> tuple[Path, Path]:
    """A TLS server certificate from the dev CA for these IP addresses (TEST material).

    A partner checks the endpoint's address against the certificate (and the CPA pins the
    certificate itself), so nodes reached by address need one that names their addresses.
    Returns (certificate file, key file) in ``folder``.
    """
    for address in addresses:
        ipaddress.ip_address(address)  # refuse anything that is not an address
    now = datetime.now(UTC)
    issued = issue_server_certificate(
        _dev_ca(),
        oin=oin,
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=2),
        common_name=addresses[0],
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1", *addresses),
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "server.pem", folder / "server-key.pem"
    cert.write_bytes(issued.certificate_pem())
    key.write_bytes(issued.private_key_pem())
    key.chmod(0o600)
    return cert, key
