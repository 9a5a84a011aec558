"""The functions' Logger and Metrics, created once and imported everywhere (Powertools, JSON logs, EMF).

Metrics carry the ``service`` and ``stage`` dimensions (so two stages in one account never feed each other's
alarms) and the template's alarms watch one series per name and stage; the partner breakdown of signature failures is a second, partner-dimensioned series (:func:`count`), and every
action's detail is in the audit log (:mod:`sealgate.audit`).
"""

from __future__ import annotations

import logging
import threading

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from sealgate import metric_names

# Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE itself; the runtime sets the namespace,
# service and stage dimension from sealgate.settings at cold start.
logger = Logger(log_uncaught_exceptions=False)
# urllib3 logs a partner's full URL (query included) on malformed answers: nothing of a request reaches a log.
logging.getLogger("urllib3").setLevel(logging.ERROR)
metrics = Metrics(namespace=metric_names.NAMESPACE, service=metric_names.SERVICE)
metrics.set_default_dimensions(stage="dev")
# Records of a batch are delivered from several threads. The Logger is safe to call from any thread (its keys,
# set by inject_lambda_context on the handler's thread, are shared by all: nothing per record is put there).
# ``Metrics.add_metric`` is not: it reads, extends and stores the metric's entry (two threads adding a new
# name keep one value) and flushes at 100 values; every increment goes through :func:`count`, under this lock.
# ``single_metric`` builds and prints an object of its own: the lock only keeps its line apart from others.
_adding = threading.Lock()


def count(name: str, *, partner: str | None = None, value: int = 1) -> None:
    """Add ``value`` to metric ``name``; with ``partner``, also to its partner-dimensioned series."""
    with _adding:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if partner is None:
            return
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=metrics.namespace,
            default_dimensions={
                **metrics.default_dimensions,
                "service": metrics.service or metric_names.SERVICE,
            },
        ) as metric:
            metric.add_dimension(name="partner", value=partner)
