"""HTTP target: POST the StUF envelope to a domain application's SOAP endpoint.

The application implements our WSDL ``wsdl/ggk-ontvang-asynchroon.wsdl`` (operations
``ontvangDi01``, ``ontvangDu01``, ``ontvangFo01``; document/literal; the StUF message is the SOAP
body, as on the GGk's own OntvangAsynchroon interface), at the route's url, over mutual TLS when
the route names a client certificate. The request is streamed from the envelope as received
(``soap_request``): a 25 MB envelope is not parsed, re-serialised or copied on its way out.

Outcomes, in the terms of the retry rule (forwarders/base.py): a StUF Bv03 answer is delivered;
connection problems, timeouts, HTTP 5xx and a SOAP Fault with faultcode Server are worth another
try; HTTP 4xx and any other Fault are not (the application refuses this message).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

import requests

from ggk_ebms import ns
from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded
from ggk_ebms.delivery.forwarders.soap_request import (
    CONTENT_TYPE,
    MAX_ANSWER_BYTES,
    SOAP_ACTIONS,
    read_answer,
    request_body,
)
from ggk_ebms.errors import TransportError
from ggk_ebms.routing.table import HttpTarget
from ggk_ebms.stuf.model import MessageKind

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

    def forward(self, delivery: Delivery) -> Forwarded:
        kind = delivery.stuf.kind
        operation = OPERATIONS.get(kind)
        if operation is None:
            raise TransportError(f"no operation for a {kind.value}", retryable=False)
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": f'"{SOAP_ACTIONS[kind]}"'}
        session = self._session()
        try:
            with session.post(
                self.target.url,
                data=request_body(delivery.envelope_bytes(), kind),
                headers=headers,
                timeout=(self.connect_timeout, self.timeout),
                stream=True,
            ) as response:
                status = response.status_code
                answer_bytes = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
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
        except (requests.exceptions.RequestException, OSError) as exc:
            raise TransportError(
                f"{self.target.url}: unusable answer to {operation}: {_first_line(exc)}",
                retryable=True,
                layer="http",
            ) from None
        finally:
            session.close()
        answer = read_answer(status, answer_bytes)
        if not answer.delivered:
            raise TransportError(
                f"{self.target.url} answered {operation} with {answer.reason}",
                retryable=answer.retryable,
                http_status=status,
                layer="http",
            )
        return Forwarded(where=f"{self.target.url} ({operation})", http_status=200)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
