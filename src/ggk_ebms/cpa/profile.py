"""Which Digikoppeling profile a delivery channel implements (Digikoppeling KVS ch. 2-3, BP ch. 3).

The CPA never names the profile; it follows from the channel:

- reliable (osb-rm*) when MessagingCharacteristics say ackRequested and duplicateElimination
  ``always``, best effort (osb-be*) when both say ``never`` (Digikoppeling KVS ch. 3, BP ch. 3, row "CPA
  MessagingCharacteristics");
- signed (-s) when the DocExchange carries Sender/ReceiverNonRepudiation (XMLDSig);
- encrypted (-e) when it carries Sender/ReceiverDigitalEnvelope (XMLENC); -e includes signing
  (ARCH9), so an envelope without non-repudiation is inconsistent.

Anything in between (ack ``always`` with duplicate elimination ``never``, ``perMessage``, an
envelope without a signature) still gets the nearest profile, and the reasons it is not a clean
one are returned as ``problems`` so validation can report them as errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from ggk_ebms.cpa.model import DeliveryChannel, DocExchange, PerMessage, Profile


@dataclass(frozen=True)
class ProfileDerivation:
    profile: Profile
    problems: tuple[str, ...] = ()


_PROFILES = {
    (False, False, False): Profile.OSB_BE,
    (True, False, False): Profile.OSB_RM,
    (False, True, False): Profile.OSB_BE_S,
    (True, True, False): Profile.OSB_RM_S,
    (False, True, True): Profile.OSB_BE_E,
    (True, True, True): Profile.OSB_RM_E,
}


def profile_of(reliable: bool, signed: bool, encrypted: bool) -> Profile:
    """The profile with these three properties; encrypted implies signed (ARCH9)."""
    return _PROFILES[(reliable, signed or encrypted, encrypted)]


def derive_profile(channel: DeliveryChannel, exchange: DocExchange | None) -> ProfileDerivation:
    """The Digikoppeling profile of ``channel`` with its DocExchange, and why it is not clean."""
    problems: list[str] = []
    mc = channel.characteristics
    ack, dup = mc.ack_requested, mc.duplicate_elimination
    if ack == dup == PerMessage.ALWAYS:
        reliable = True
    elif ack == dup == PerMessage.NEVER:
        reliable = False
    else:
        # KVS3/KVS6: osb-rm needs both (once-and-only-once), osb-be neither; a mix is neither.
        reliable = ack == PerMessage.ALWAYS or (ack == PerMessage.PER_MESSAGE and dup == PerMessage.ALWAYS)
        problems.append(
            f"ackRequested={ack} with duplicateElimination={dup} is no Digikoppeling profile: "
            "osb-rm needs both 'always', osb-be both 'never'"
        )
    sides = [side for side in (exchange.sender, exchange.receiver) if side is not None] if exchange else []
    signed = any(side.non_repudiation is not None for side in sides)
    encrypted = any(side.digital_envelope is not None for side in sides)
    if encrypted and not signed:
        problems.append("payloads are encrypted but not signed; the -e profiles include signing (ARCH9)")
    return ProfileDerivation(profile_of(reliable, signed, encrypted), tuple(problems))
