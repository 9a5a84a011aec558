"""Local tooling: ``python -m sealgate_local demo|run|generate|soak`` (``make demo``, ``make run``, ...).

- ``demo``: start the local stack, run one flow per partner, print the table and the summary; exit 0 only if
  every flow was verified by its partner's sandbox.
- ``run``: start the local stack and keep it up until Ctrl-C, printing the base URL, the throwaway credentials
  its IAM routes check SigV4 against, and a signed ``curl`` per route.
- ``generate``: rewrite what follows from the partner profiles (the functions' secret policies in
  ``template.yaml``, ``events/``); ``--check`` only lists what is stale and exits 1 if anything is (see
  :mod:`sealgate_local.generate`).
- ``redrive``: move the outbound dead-letter queue's messages back to the outbound queue of a running local
  stack (what ``aws sqs start-message-move-task`` does deployed; see :mod:`sealgate_local.redrive`).
- ``soak``: send many forwards through the local stack while the partner sandboxes inject faults, wait until
  every one is settled and check nothing was lost, duplicated or misreported (see :mod:`sealgate_local.soak`);
  exit 0 only if every check holds.

``--built`` runs the functions from ``sam build``'s output (``make sam-build`` first); ``--verbose`` shows every
line the functions print (their JSON logs and EMF metrics: names and codes, never values).
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType


def _echo(function: str, line: str) -> None:
    print(f"[{function}] {line}", file=sys.stderr, flush=True)


def run(*, built: bool, verbose: bool) -> int:
    """Serve until Ctrl-C (or SIGTERM)."""
    from sealgate_local.curl_examples import curl_examples, python_example
    from sealgate_local.stack import LocalStack

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"Starting the local stack{' from the SAM build' if built else ''}...", flush=True)
    refused = functools.partial(_echo, "local-api")
    with LocalStack(
        built=built, echo=_echo if verbose else None, iam_auth=True, on_auth_refusal=refused
    ) as stack:
        credentials = stack.credentials
        print(f"\nSealgate is running locally. Base URL: {stack.base_url}")
        print(
            "Every route but the webhooks needs SigV4, checked as API Gateway checks it (service execute-api, "
            f"region {stack.region}, X-Amz-Date within 5 minutes). Throwaway credentials, valid for this run only:"
        )
        print(f"  export KEY={credentials.access_key} SECRET={credentials.secret_key}")
        print(f"  (caller {stack.caller_arn})")
        python = python_example(stack)
        if python is not None:
            print(f"Signed from Python (botocore's SigV4):\n  {python}")
        print("Partner sandboxes (HTTPS, throwaway CA):")
        for partner, url in stack.sandboxes.urls.items():
            print(f"  {partner:<12} {url}")
        print()
        for line in curl_examples(stack):
            print(line)
        endpoint = stack.clients.sqs.meta.endpoint_url if stack.clients is not None else ""
        print(
            f"\nRedrive the outbound dead letters: python -m sealgate_local redrive --endpoint-url {endpoint}"
        )
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
    from sealgate_local import soak

    soak.add_arguments(
        commands.add_parser(
            "soak", help="forwards under injected partner faults, then nothing lost or duplicated"
        )
    )
    redrive = commands.add_parser(
        "redrive", help="move the local outbound dead letters back to the outbound queue (make run's stack)"
    )
    redrive.add_argument(
        "--endpoint-url", required=True, help="the local stack's AWS endpoint (make run prints it)"
    )
    redrive.add_argument("--stage", default="dev")
    redrive.add_argument("--region", default="us-east-1")
    redrive.add_argument("--limit", type=int, default=None, help="move at most this many messages")
    args = parser.parse_args(argv)
    if args.command == "redrive":
        from sealgate_local import redrive as redriving

        return redriving.main(
            endpoint_url=args.endpoint_url, stage=args.stage, region=args.region, limit=args.limit
        )
    if args.command == "soak":
        return soak.main(args, echo=_echo if args.verbose else None)
    if args.command == "generate":
        return generate.main(check=args.check, profiles_dir=args.profiles_dir)
    if args.command == "run":
        return run(built=args.built, verbose=args.verbose)
    from sealgate_local import demo

    return demo.main(built=args.built, echo=_echo if args.verbose else None)


if __name__ == "__main__":
    sys.exit(main())
