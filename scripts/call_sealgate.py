"""Call Sealgate's API signed with SigV4, as every route but the webhooks requires (deployed: IAM auth).

    python scripts/call_sealgate.py POST https://<api-id>.execute-api.<region>.amazonaws.com/<stage>/v1/encrypt/netcore \\
        '{"payload": {"event": "signup"}}'
    python scripts/call_sealgate.py GET <base url>/v1/forward/<id>

The request is signed by botocore's ``SigV4Auth`` for the service ``execute-api``; the credentials are the
caller's usual ones (environment, profile, SSO, instance role: botocore's chain, ``AWS_PROFILE`` included).
The region comes from ``--region``, else from an ``execute-api`` host name, else from ``AWS_REGION`` /
``AWS_DEFAULT_REGION``. Against ``make run``, pass the throwaway credentials it prints:
``AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" python scripts/call_sealgate.py ...``.

A body of ``@file`` is read from that file. The answer's body goes to stdout, its status to stderr; the exit
status is 0 for a 2xx answer, 1 otherwise, 2 when the call could not be made or signed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

SERVICE = "execute-api"
TIMEOUT_SECONDS = 30
_EXECUTE_API_HOST = re.compile(r"[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")


def region_for(url: str, explicit: str | None) -> str | None:
    """``explicit``, else the region in an ``execute-api`` host name, else the environment's."""
    if explicit:
        return explicit
    found = _EXECUTE_API_HOST.fullmatch(urlsplit(url).hostname or "")
    if found is not None:
        return found[1]
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def signed_request(method: str, url: str, body: bytes, region: str) -> urllib.request.Request:
    """The request with ``X-Amz-Date`` and ``Authorization`` from botocore's SigV4 signer."""
    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials found (environment, profile or role)")
    headers = {"Content-Type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(request)
    return urllib.request.Request(
        url, data=body or None, headers=dict(request.headers.items()), method=method
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", help="GET or POST")
    parser.add_argument("url", help="the route's full URL, stage included")
    parser.add_argument("body", nargs="?", default="", help="JSON body, or @file")
    parser.add_argument("--region", help="the API's region (default: from the URL or the environment)")
    args = parser.parse_args(argv)
    body = Path(args.body[1:]).read_bytes() if args.body.startswith("@") else args.body.encode("utf-8")
    if urlsplit(args.url).scheme not in ("http", "https"):
        print("the URL must be http:// or https://", file=sys.stderr)
        return 2
    region = region_for(args.url, args.region)
    if region is None:
        print("no region: pass --region or set AWS_REGION", file=sys.stderr)
        return 2
    try:
        request = signed_request(args.method.upper(), args.url, body, region)
        # the scheme was checked above: http:// or https:// only, never file:// or a custom one
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # nosec B310
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    except (OSError, RuntimeError) as error:
        print(f"call failed: {error}", file=sys.stderr)
        return 2
    print(status, file=sys.stderr)
    sys.stdout.write(answer.decode("utf-8", "replace") + "\n")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
