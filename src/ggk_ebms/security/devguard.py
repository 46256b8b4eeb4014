"""No dev material in production: the keys of certs/dev/ are in the repository, so public.

``serve`` on a loopback address with them is the normal dev set-up; on any other address it would
be a production-shaped endpoint anyone can impersonate or decrypt. So that is refused unless the
setting ``allow_dev_certificates_public`` says it is meant (a closed test network).
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from pathlib import Path

from ggk_ebms.config import Settings, declared
from ggk_ebms.errors import ConfigError


def is_dev_material(path: Path) -> bool:
    """True for anything under a ``certs/dev`` folder (the committed dev PKI, certs/dev/README.md)."""
    parts = path.resolve().parts if path.exists() else path.parts
    return any(a == "certs" and b == "dev" for a, b in itertools.pairwise(parts))


def dev_material_settings(settings: Settings) -> list[str]:
    """Names of the path settings that point into certs/dev."""
    return [
        f.name
        for f in declared()
        if isinstance(getattr(settings, f.name), Path) and is_dev_material(getattr(settings, f.name))
    ]


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback address (empty: all interfaces)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def refuse_public_dev_material(settings: Settings) -> None:
    """ConfigError when ``settings`` would serve certs/dev material on a non-loopback address."""
    if settings.allow_dev_certificates_public or is_loopback(settings.host):
        return
    names = dev_material_settings(settings)
    if names:
        raise ConfigError(
            f"refusing to serve on {settings.host}, which is not a loopback address, with the dev "
            f"certificates of certs/dev (their keys are public): {', '.join(names)}. Configure your "
            "own certificates, or set allow_dev_certificates_public = true for a closed test network."
        )
