"""Local tooling: ``python -m sealgate_local demo|run|generate`` (``make demo``, ``make run``, ``make generate``).

- ``demo``: start the local stack, run one flow per partner, print the table and the summary; exit 0 only if
  every flow was verified by its partner's sandbox.
- ``run``: start the local stack and keep it up until Ctrl-C, printing the base URL and a ``curl`` per route.
- ``generate``: rewrite what follows from the partner profiles (the functions' secret policies in
  ``template.yaml``, ``events/``); ``--check`` only lists what is stale and exits 1 if anything is (see
  :mod:`sealgate_local.generate`).

``--built`` runs the functions from ``sam build``'s output (``make sam-build`` first); ``--verbose`` shows every
line the functions print (their JSON logs and EMF metrics: names and codes, never values).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType


def _echo(function: str, line: str) -> None:
    print(f"[{function}] {line}", file=sys.stderr, flush=True)


def run(*, built: bool, verbose: bool) -> int:
    """Serve until Ctrl-C (or SIGTERM)."""
    from sealgate_local.curl_examples import curl_examples
    from sealgate_local.stack import LocalStack

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"Starting the local stack{' from the SAM build' if built else ''}...", flush=True)
    with LocalStack(built=built, echo=_echo if verbose else None) as stack:
        print(f"\nSealgate is running locally. Base URL: {stack.base_url}")
        print("IAM routes take plain requests here: the local API marks the caller as", stack.caller_arn)
        print("Partner sandboxes (HTTPS, throwaway CA):")
        for partner, url in stack.sandboxes.urls.items():
            print(f"  {partner:<12} {url}")
        print()
        for line in curl_examples(stack):
            print(line)
        print("\nPress Ctrl-C to stop.", flush=True)
        stopping.wait()
        print("\nStopping...", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sealgate_local", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("demo", "run one flow per partner and exit"), ("run", "serve until Ctrl-C")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--built", action="store_true", help="run the functions from .aws-sam/build")
        command.add_argument("--verbose", action="store_true", help="show what the functions print")
    from sealgate_local import generate

    generate.add_arguments(
        commands.add_parser(
            "generate", help="rewrite template.yaml's secret policies and events/ from the profiles"
        )
    )
    args = parser.parse_args(argv)
    if args.command == "generate":
        return generate.main(check=args.check, profiles_dir=args.profiles_dir)
    if args.command == "run":
        return run(built=args.built, verbose=args.verbose)
    from sealgate_local import demo

    return demo.main(built=args.built, echo=_echo if args.verbose else None)


if __name__ == "__main__":
    sys.exit(main())
