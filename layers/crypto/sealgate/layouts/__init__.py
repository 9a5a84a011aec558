"""Payload layouts: where a cipher's tokens go in a partner's JSON payload (reached through
:mod:`sealgate.schemes`, kind ``layout``)."""
