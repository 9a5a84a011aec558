"""Sealgate's crypto layer: the partners' schemes (one registry), partner profiles, keys, audit and the
actions of the Lambda functions.

Importing the package is cheap on purpose: each scheme lives in its own module and is imported only when the
registry (:mod:`sealgate.schemes`) is asked for it.
"""

from __future__ import annotations

__version__ = "0.1.0"
