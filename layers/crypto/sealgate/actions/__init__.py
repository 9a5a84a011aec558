"""The gateway's actions, one small module each: parse the request into typed input, do one thing, audit it.

- :mod:`~sealgate.actions.encrypt`: protect a payload the partner's way, or reveal one (symmetric schemes).
- :mod:`~sealgate.actions.sign`: what signing derives for a request body (never a stored credential).
- :mod:`~sealgate.actions.webhook`: verify a partner's notification, de-duplicate it, queue it.
- :mod:`~sealgate.actions.forward`: protect a request and queue it; read its outcome.
- :mod:`~sealgate.actions.deliver`: deliver the outbound queue's messages to the partners.

Each takes a :class:`~sealgate.runtime.Runtime` and raises :class:`~sealgate.errors.SealgateError` for every
refusal; the handlers map those to responses in one place (:mod:`sealgate.http_api`).
"""
