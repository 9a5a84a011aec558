"""Forward function: ``POST /v1/forward/{partner}`` (protect, then queue), ``GET /v1/forward/{id}`` (outcome),
and the outbound SQS queue's trigger (deliver, reporting partial batch failures).

Thin on purpose: route by event shape, call one action of the layer, map errors to responses.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from sealgate import http_api, route_docs
from sealgate.actions import forward
from sealgate.runtime import Runtime, reporting_key_failures
from sealgate.telemetry import logger, metrics

app = APIGatewayRestResolver()
http_api.install_error_handlers(app)
runtime = Runtime.start("forward")  # cold start: profiles, and the secrets of the partners it serves


@app.post("/v1/forward/<target>", **route_docs.ENQUEUE)
def enqueue(target: str) -> Response[str]:
    return http_api.respond(
        *forward.enqueue(runtime, target, http_api.Request.from_event(app.current_event, app.lambda_context))
    )


@app.get("/v1/forward/<target>", **route_docs.OUTCOME)
def outcome(target: str) -> Response[str]:
    return http_api.respond(
        200,
        forward.status(runtime, target, http_api.Request.from_event(app.current_event, app.lambda_context)),
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@reporting_key_failures(runtime)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        from sealgate.actions import deliver  # the queue's trigger only: an API cold start never loads it

        return deliver.process_batch(runtime, event, context)
    return app.resolve(event, context)
