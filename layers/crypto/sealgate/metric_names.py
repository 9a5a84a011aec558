"""Names of the CloudWatch metrics the functions emit (EMF) and the template's alarms watch.

One place for both sides: the template tests check that every alarm watches a name listed here.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "Sealgate"
SERVICE: Final = "sealgate"

SIGNATURE_CHECK_FAILED: Final = "SignatureCheckFailed"
DECRYPTION_FAILED: Final = "DecryptionFailed"
FORWARD_DELIVERED: Final = "ForwardDelivered"
FORWARD_FAILED: Final = "ForwardFailed"
KEY_LOAD_FAILED: Final = "KeyLoadFailed"
WEBHOOK_ACCEPTED: Final = "WebhookAccepted"

ALL: Final = (
    SIGNATURE_CHECK_FAILED,
    DECRYPTION_FAILED,
    FORWARD_DELIVERED,
    FORWARD_FAILED,
    KEY_LOAD_FAILED,
    WEBHOOK_ACCEPTED,
)
