"""Forward function: ``POST /v1/forward/{partner}`` (enqueue), ``GET /v1/forward/{id}`` (outcome), and the
outbound SQS queue's trigger (deliver, reporting partial batch failures).

Thin on purpose: route by event shape, call the layer, map errors to responses.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from sealgate import forwarding, http_api
from sealgate.gateway import Gateway
from sealgate.telemetry import logger, metrics

app = APIGatewayRestResolver()
http_api.install_error_handlers(app)
gateway = Gateway.from_environment()  # cold start: secrets of this function's partners


@app.post("/v1/forward/<target>")
def enqueue(target: str) -> Response[str]:
    status, body = gateway.enqueue(target, http_api.Request.from_event(app.current_event))
    return http_api.respond(status, body)


@app.get("/v1/forward/<target>")
def outcome(target: str) -> Response[str]:
    return http_api.respond(200, gateway.status(target, http_api.Request.from_event(app.current_event)))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return forwarding.process_batch(gateway, event, context)
    gateway.report_key_failures()
    return app.resolve(event, context)
