"""The SAM template, transformed offline by aws-sam-translator (no AWS account, no network)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"

Template = dict[str, Any]


@pytest.fixture(scope="session")
def sam_template() -> Template:
    """template.yaml as written (SAM resources, short-form intrinsics parsed)."""
    from samtranslator.yaml_helper import yaml_parse

    parsed: Template = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    return parsed


@pytest.fixture(scope="session")
def cfn(sam_template: Template) -> Template:
    """The CloudFormation template SAM deploys, from the translator with the default parameter values.

    Local ``CodeUri``/``ContentUri`` paths become placeholder S3 locations first, as ``sam validate`` does;
    the tests read the local paths from ``sam_template``.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(sam_template)
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = f"s3://sealgate-template-test/{name}.zip"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.Session(region_name="us-east-1"),
    )
    # The stub loader: every managed policy in the template is an AWS-managed ARN SAM adds itself.
    translated: Template = translator.translate(template, parameter_values={}, get_managed_policy_map=dict)
    return translated


@pytest.fixture(scope="session")
def events() -> dict[str, dict[str, Any]]:
    """events/*.json by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(EVENTS.glob("*.json"))}
