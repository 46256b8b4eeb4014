"""HTTP target: POST the StUF envelope to a domain application's SOAP endpoint.

The application implements our WSDL ``wsdl/ggk-ontvang-asynchroon.wsdl`` (operations
``ontvangDi01``, ``ontvangDu01``, ``ontvangFo01``; document/literal; the StUF message is the SOAP
body, as on the GGk's own OntvangAsynchroon interface). zeep builds the request from that WSDL,
with the route's url as the address, over mutual TLS when the route names a client certificate.

Outcomes, in the terms of the retry rule (forwarders/base.py): a StUF Bv03 answer is delivered;
connection problems, timeouts, HTTP 5xx and a SOAP Fault with faultcode Server are worth another
try; HTTP 4xx and any other Fault are not (the application refuses this message).
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from ggk_ebms import ns
from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded
from ggk_ebms.errors import TransportError
from ggk_ebms.routing.table import HttpTarget
from ggk_ebms.stuf.model import MessageKind
from ggk_ebms.xml import parse

WSDL_NAME: Final = "ggk-ontvang-asynchroon.wsdl"
BINDING: Final = f"{{{ns.GGK_0210}}}OntvangAsynchroonSoap11"
OPERATIONS: Final = {
    MessageKind.DI01: "ontvangDi01",
    MessageKind.DU01: "ontvangDu01",
    MessageKind.FO01: "ontvangFo01",
}


def wsdl_path() -> Path:
    """Our WSDL inside the installed package."""
    return Path(str(resources.files("ggk_ebms.delivery") / "wsdl" / WSDL_NAME))


@cache
def _wsdl_lock() -> threading.Lock:
    return threading.Lock()


class HttpForwarder:
    def __init__(self, target: HttpTarget, *, connect_timeout: float = 10.0, timeout: float = 120.0) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.timeout = timeout

    def _session(self) -> requests.Session:
        session = requests.Session()
        if self.target.client_cert is not None:
            key = self.target.client_key
            session.cert = (str(self.target.client_cert), str(key)) if key else str(self.target.client_cert)
        if self.target.trust_store is not None:
            session.verify = str(self.target.trust_store)
        return session

    def _client(self, session: requests.Session) -> zeep.Client:
        transport = Transport(  # type: ignore[no-untyped-call]
            session=session, timeout=self.connect_timeout, operation_timeout=self.timeout
        )
        # Strict settings: no DTDs or external entities in the application's answer either.
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        with _wsdl_lock():
            return zeep.Client(str(wsdl_path()), transport=transport, settings=settings)  # type: ignore[no-untyped-call]

    def forward(self, delivery: Delivery) -> Forwarded:
        operation = OPERATIONS.get(delivery.stuf.kind)
        if operation is None:
            raise TransportError(f"no operation for a {delivery.stuf.kind.value}", retryable=False)
        # The envelope passed the hardened parser before; parse again for a private element tree.
        root = parse(delivery.envelope, max_bytes=max(len(delivery.envelope), 1), what="StUF envelope")
        session = self._session()
        try:
            client = self._client(session)
            service: Any = client.create_service(BINDING, self.target.url)  # type: ignore[no-untyped-call]
            result = getattr(service, operation)(_value_1=list(root))
        except zeep.exceptions.Fault as fault:
            code = str(fault.code or "")
            retryable = code.endswith("Server")
            raise TransportError(
                f"{self.target.url} answered {operation} with a SOAP Fault ({code or 'no faultcode'})",
                retryable=retryable,
                http_status=500,
                layer="http",
            ) from None
        except zeep.exceptions.TransportError as exc:
            status = exc.status_code
            raise TransportError(
                f"{self.target.url} answered {operation} with HTTP {status}",
                retryable=status >= 500 or status in (408, 429),
                http_status=status,
                layer="http",
            ) from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                f"TLS to {self.target.url} failed: {_first_line(exc)}", retryable=True, layer="tls"
            ) from None
        except requests.exceptions.Timeout:
            raise TransportError(
                f"{self.target.url} did not answer in time", retryable=True, layer="timeout"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(
                f"cannot reach {self.target.url}: {_first_line(exc)}", retryable=True, layer="connect"
            ) from None
        except (zeep.exceptions.Error, requests.exceptions.RequestException) as exc:
            raise TransportError(
                f"{self.target.url}: unusable answer to {operation}: {_first_line(exc)}",
                retryable=True,
                layer="http",
            ) from None
        finally:
            session.close()
        del result  # a Bv03 carries nothing we keep
        return Forwarded(where=f"{self.target.url} ({operation})", http_status=200)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
