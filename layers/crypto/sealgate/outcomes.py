"""Forward outcomes in DynamoDB: one item per forwarded request, with a TTL.

Item: ``id`` (S, key), ``partner``, ``operation``, ``status`` (queued | delivered | retrying | waiting |
rejected | dead_lettered), ``idempotency_key``, ``attempts`` (requests the partner was sent), ``waits`` (times
the message was put back untried), ``next_attempt_at`` (while it waits), ``partner_status``, ``response_md5``,
``last_reason`` (why it waits, or how it ended), ``message_id``, ``created_at``/``updated_at`` (ISO 8601),
``expires_at`` (epoch seconds, the TTL attribute) and ``response_body`` only where the partner's profile opts
in. Never the payload.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sealgate.aws_clients import client
from sealgate.errors import NotFound, Unavailable


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {key: serializer.serialize(value) for key, value in values.items() if value is not None}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    from decimal import Decimal

    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    out = {key: deserializer.deserialize(typed) for key, typed in item.items()}
    return {key: int(value) if isinstance(value, Decimal) else value for key, value in out.items()}


class OutcomeStore:
    """Reads and writes outcome items in ``table``."""

    def __init__(self, table: str, *, ttl_days: int = 30) -> None:
        self.table = table
        self.ttl_seconds = ttl_days * 86400

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(client("dynamodb"), method)(TableName=self.table, **kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise
            raise Unavailable("outcome store is unavailable") from None
        except BotoCoreError:
            raise Unavailable("outcome store is unavailable") from None

    def create(self, outcome_id: str, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Put a new item; if ``outcome_id`` exists already, return the existing item instead."""
        from botocore.exceptions import ClientError

        now = _now_iso()
        item = _to_item(
            {
                **values,
                "id": outcome_id,
                "created_at": now,
                "updated_at": now,
                "expires_at": int(time.time()) + self.ttl_seconds,
            }
        )
        try:
            self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(id)")
        except ClientError:
            return self.get(outcome_id)
        return None

    def record_queued(self, outcome_id: str, partner: str, operation: str, idempotency_key: str) -> None:
        """The first record of a forward request: ``queued``, no attempt yet (kept if it exists already)."""
        self.create(
            outcome_id,
            {
                "partner": partner,
                "operation": operation,
                "status": "queued",
                "idempotency_key": idempotency_key,
                "attempts": 0,
            },
        )

    def update(
        self,
        outcome_id: str,
        values: Mapping[str, Any],
        *,
        count_attempt: bool = False,
        keep_delivered: bool = False,
    ) -> bool:
        """Set ``values`` (a None value removes the attribute) and bump ``attempts`` on the item, creating it
        when missing. With ``keep_delivered`` an item that says ``delivered`` is left as it is (False): a
        copy's later news must not hide a delivery. True when the item was written."""
        from botocore.exceptions import ClientError

        item = _to_item({**values, "updated_at": _now_iso()})
        removed = sorted(name for name, value in values.items() if value is None)
        names = {f"#f{i}": name for i, name in enumerate(item)}
        values_ = {f":v{i}": typed for i, typed in enumerate(item.values())}
        sets = [f"#f{i} = :v{i}" for i in range(len(item))]
        sets.append("expires_at = if_not_exists(expires_at, :ttl)")
        values_[":ttl"] = {"N": str(int(time.time()) + self.ttl_seconds)}
        expression = "SET " + ", ".join(sets)
        if count_attempt:
            expression += " ADD attempts :one"
            values_[":one"] = {"N": "1"}
        if removed:
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        condition: dict[str, Any] = {}
        if keep_delivered:
            names["#status"] = "status"
            values_[":delivered"] = {"S": "delivered"}
            condition["ConditionExpression"] = "attribute_not_exists(#status) OR #status <> :delivered"
        try:
            self._call(
                "update_item",
                Key={"id": {"S": outcome_id}},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values_,
                **condition,
            )
        except ClientError:  # only ConditionalCheckFailedException comes through _call
            return False
        return True

    def delete(self, outcome_id: str) -> None:
        self._call("delete_item", Key={"id": {"S": outcome_id}})

    def get(self, outcome_id: str) -> dict[str, Any]:
        """The item as plain values; :class:`NotFound` when there is none."""
        answer = self._call("get_item", Key={"id": {"S": outcome_id}}, ConsistentRead=True)
        if "Item" not in answer:
            raise NotFound("no forward request with this id")
        return _from_item(answer["Item"])
