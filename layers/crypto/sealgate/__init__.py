"""Sealgate's crypto layer: partner wire formats, keys, audit and forwarding for the Lambda functions.

Importing the package is cheap on purpose: each wire format lives in its own module and is imported only by
the code that needs it.
"""

from __future__ import annotations

__version__ = "0.1.0"
