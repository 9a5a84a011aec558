"""Local-development tooling: moto-backed AWS, a local API Gateway, an SQS poller and partner sandboxes.

It drives the same handlers Lambda runs; nothing in the handlers or the layer knows whether it is local, and
the layer never imports this package.
"""
