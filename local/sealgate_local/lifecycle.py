"""The one ``with`` protocol of the local tooling's servers: ``start()`` on entry, ``stop()`` on exit."""

from __future__ import annotations

from typing import Self


class Service:
    """Something started with :meth:`start` and stopped with :meth:`stop`; ``with X(...) as x`` does both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
