"""The one exception tree of ggk-ebms.

Every failure the endpoint can name is one of these. Protocol errors carry what the peer must be
told (an ebMS ``eb:Error`` or a SOAP Fault), so the layer that answers never guesses; transport
errors say whether a retry can help. Third-party exceptions (lxml, aiohttp, SQLAlchemy,
cryptography, xmlsec) are translated at the adapter boundary and never leak upward.

::

    GgkEbmsError
    ├── ConfigError                 settings file, environment or referenced files are wrong
    ├── XmlError                    input is not XML we are willing to read
    │   ├── UnsafeXmlError          DTD, entity declaration or other forbidden construct
    │   └── XmlTooLargeError        over the byte limit of that input
    ├── CpaError                    a CPA cannot be used
    │   ├── CpaInvalidError         validation found errors (carries the findings)
    │   ├── CpaNotFoundError        no CPA with that CPAId
    │   └── CpaExistsError          import refused: CPAId stored already, no --overwrite
    ├── EbmsError                   ebMS 2.0 protocol error: becomes an eb:Error in a MessageError
    ├── SoapFaultError              refuse the whole request with a SOAP Fault (no trusted party)
    │   └── AuthenticationError     TLS client certificate not allowed for this From party (403)
    ├── MimeError                   the multipart/related body cannot be split (a Fault, HTTP 500)
    ├── StufError                   StUF-GGk envelope or payload refused; ``code``: the foutcode
    ├── StoreError                  database failure
    │   ├── StoreUnavailableError   database unreachable: answer 503 so the sender retries
    │   └── DuplicateMessageError   a message with this direction and MessageId is stored already
    ├── TransportError              sending failed; ``retryable`` says whether to try again,
    │                               ``layer`` where it failed (dns, connect, tls-…, timeout, http)
    └── StateTransitionError        an event does not fit an outbound message's current state
"""

from __future__ import annotations

from enum import StrEnum


class GgkEbmsError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(GgkEbmsError):
    """A setting, settings file or a file a setting names is wrong."""


class XmlError(GgkEbmsError):
    """Input is not well-formed XML, or not XML we accept."""


class UnsafeXmlError(XmlError):
    """Input uses a construct we refuse on principle: DOCTYPE, entities, processing of externals."""


class XmlTooLargeError(XmlError):
    """Input exceeds the byte limit set for it."""


class CpaError(GgkEbmsError):
    """A CPA cannot be read, stored or used."""


class CpaInvalidError(CpaError):
    """Validation of a CPA found at least one error; ``findings`` holds every finding."""

    def __init__(self, message: str, findings: list[object] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


class CpaNotFoundError(CpaError):
    """No CPA with the given CPAId is known."""


class CpaExistsError(CpaError):
    """A CPA with this CPAId is stored already and overwriting was not asked for."""


class ErrorCode(StrEnum):
    """ebMS 2.0 error codes (ebMS 2.0 §4.2.3.4.1). Only the default codeContext is used."""

    VALUE_NOT_RECOGNIZED = "ValueNotRecognized"
    NOT_SUPPORTED = "NotSupported"
    INCONSISTENT = "Inconsistent"
    OTHER_XML = "OtherXml"
    DELIVERY_FAILURE = "DeliveryFailure"
    TIME_TO_LIVE_EXPIRED = "TimeToLiveExpired"
    SECURITY_FAILURE = "SecurityFailure"
    MIME_PROBLEM = "MimeProblem"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    WARNING = "Warning"
    ERROR = "Error"


class EbmsError(GgkEbmsError):
    """An ebMS protocol error about a message we could identify; answered with a MessageError.

    ``location`` is the XPath (``//Header/MessageHeader/From/Role``) or ``cid:`` reference the
    standard asks for; ``description`` is the English text that goes in ``eb:Description``.
    """

    def __init__(
        self,
        code: ErrorCode,
        location: str,
        description: str,
        severity: Severity = Severity.ERROR,
    ) -> None:
        super().__init__(f"{code} at {location}: {description}")
        self.code = code
        self.location = location
        self.description = description
        self.severity = severity


class SoapFaultError(GgkEbmsError):
    """Refuse the request as a whole with a SOAP 1.1 Fault.

    Used where no MessageError can be addressed: the sender is unknown or untrusted, the CPA is
    unknown, the envelope is not ebXML (ebMS 2.0 §4.2, "HTTP 500 instead"). ``body`` False means the
    reference behaviour of an empty 500 response.
    """

    def __init__(
        self,
        faultstring: str,
        faultcode: str = "Client",
        http_status: int = 500,
        body: bool = True,
    ) -> None:
        super().__init__(faultstring)
        self.faultstring = faultstring
        self.faultcode = faultcode
        self.http_status = http_status
        self.body = body


class AuthenticationError(SoapFaultError):
    """The TLS client certificate may not act for the From
    party of the message (Digikoppeling BEV ch. 3-5: 403)."""

    def __init__(self, faultstring: str) -> None:
        super().__init__(faultstring, faultcode="Client", http_status=403)


class MimeError(GgkEbmsError):
    """A multipart/related body is truncated, has no start part or is otherwise unusable."""


class StufError(GgkEbmsError):
    """A StUF-GGk envelope, or the payload inside it, cannot be accepted (GGk handleiding;
    docs/stuf-routing.md inbound checks).

    ``code`` is the foutcode a Fo01 about it carries: a StUF 03.01 code such as ``StUF055`` (not
    schema-conform), ``StUF010`` (ontvanger unknown), ``StUF037`` (functie unsupported),
    ``StUF040`` (combination unsupported) or ``StUF016`` (zender + referentienummer not unique),
    or the GGk code of a limit we enforce on sending (``IB003``). ``plek`` is ``client`` or
    ``server`` (StUF 03.01 Foutplek). ``stuurgegevens`` holds the envelope's stuurgegevens when
    they could be read (a ``ggk_ebms.stuf.model.Stuurgegevens``): then a Fo01 can be addressed;
    without them the message can only be quarantined. The text never quotes payload content.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        plek: str = "client",
        stuurgegevens: object | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.omschrijving = message
        self.plek = plek
        self.stuurgegevens = stuurgegevens


class StoreError(GgkEbmsError):
    """The database refused or failed an operation."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached; callers answer 503 and never acknowledge."""


class DuplicateMessageError(StoreError):
    """A message with this direction and MessageId is stored already (ebMS 2.0 §6.5.3).

    Nothing of the new message was stored; ``existing_pk`` is the stored one, so the caller can
    compare content digests and replay the stored signal or refuse the reuse of the MessageId.
    """

    def __init__(self, message_id: str, existing_pk: int) -> None:
        super().__init__(f"message {message_id!r} is stored already")
        self.message_id = message_id
        self.existing_pk = existing_pk


class TransportError(GgkEbmsError):
    """Sending to a partner failed. ``retryable`` follows the
    retry table of Digikoppeling KVS ch. 5 (HTTP status handling).

    ``layer`` names where it failed, so the ping check can explain it in plain words: one of the
    values of ``ggk_ebms.transport.result.Layer`` ("dns", "connect", "tls-server-untrusted",
    "tls-name-mismatch", "tls-client-refused", "tls-server-not-in-cpa", "tls", "timeout", "http").
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        layer: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.http_status = http_status
        self.layer = layer


class StateTransitionError(GgkEbmsError):
    """An event does not fit the current state of an outbound
    message (ebMS 2.0 §7.1.2, docs/rules.md status model).

    Raised, for example, when an Acknowledgment arrives for a message that has Expired already:
    the state stays as it is and the caller logs and drops the event.
    """
