"""The client certificate as reported by a TLS-terminating proxy, trusted only from that proxy.

A proxy (offloader) that terminates TLS can pass the client certificate on in a request header as
URL-encoded PEM. Any direct caller can send that header too and claim any certificate (SEC26 F2,
docs/rules.md), so the rule (Digikoppeling BEV ch. 3-5, "Proxy header") is: read it only when the TCP peer is
on an explicit allow-list of terminating proxies; from anyone else it is ignored. Allow-list entries are
exact IP addresses or CIDR networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ggk_ebms.errors import ConfigError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowlist(entries: Collection[str]) -> tuple[IpNetwork, ...]:
    """The ``proxy_allowlist`` setting as networks; a bare address is a one-address network.

    Host names are refused: they would make trust depend on DNS.
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=True))
        except ValueError as exc:
            raise ConfigError(
                f"proxy_allowlist entry {entry!r} is not an IP address or network: {exc}"
            ) from None
    return tuple(networks)


def peer_is_allowed(peer_address: str, allowlist: Collection[str]) -> bool:
    """True when ``peer_address`` (the TCP peer, never a forwarded-for header) is allow-listed."""
    try:
        address = ipaddress.ip_address(peer_address.strip())
    except ValueError:
        return False  # not a TCP peer (a Unix socket, say): never a trusted proxy
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 from a dual-stack socket is 10.0.0.5
    return any(address in network for network in parse_allowlist(allowlist))


def client_cert_from_proxy(
    header_value: str | None, peer_address: str, allowlist: Collection[str]
) -> bytes | None:
    """The DER client certificate from the proxy header, or None when it must not be used.

    None when: no header, the TCP peer is not on the allow-list (a possible forgery; ignored, not
    an error, because the TLS peer certificate still decides), or the value is not one URL-encoded
    PEM certificate.
    """
    if not header_value or not peer_is_allowed(peer_address, allowlist):
        return None
    pem = unquote(header_value.strip()).encode("ascii", errors="replace")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return None
    if len(certificates) != 1:
        return None  # one client certificate, no chains or concatenations
    return certificates[0].public_bytes(Encoding.DER)
