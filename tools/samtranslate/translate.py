#!/usr/bin/env python3
"""Print the CloudFormation that the SAM transform makes of a SAM template.

    python3 tools/samtranslate/translate.py [--region R] [--param Name=Value ...] template.yaml

It runs aws-sam-translator, the library behind the AWS::Serverless-2016-10-31
transform (the machine image ships it with cfn-lint), offline: no AWS
credentials, no network. The template is read with the translator's own YAML
loader. What `sam package` and a deploy would add is given explicitly:

  - each function's CodeUri is a placeholder S3 location (sam package uploads
    the built code and writes its location; the transform accepts nothing
    else, and the stack does not depend on it);
  - the parameter values (--param, as `sam deploy --parameter-overrides`
    passes them; the others take their defaults) and the region;
  - no managed-policy map from IAM: the translator resolves AWS managed
    policy names from the list it bundles and asks for the account's map
    (an IAM call) only for a name it does not know, which fails here. This
    stack names none: its roles are written out (internal/deploy checks).

The result is printed as JSON on stdout; a template the transform rejects is
an exit status of 1 with the translator's messages on stderr.
"""

import argparse
import json
import sys

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

# Where `sam package` would have put the code: any S3 location will do.
PLACEHOLDER_CODE = {"Bucket": "regtrigger-placeholder", "Key": "code.zip"}


def no_managed_policies():
    raise RuntimeError("the template names a managed policy the translator does not know: that needs IAM")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("template")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()

    params = {}
    for p in args.param:
        name, sep, value = p.partition("=")
        if not sep or not name:
            ap.error(f"--param {p!r}: want NAME=VALUE")
        params[name] = value

    with open(args.template, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    declared = template.get("Parameters") or {}
    for name in params:
        if name not in declared:
            ap.error(f"--param {name}: the template declares no such parameter")
    for rsc in (template.get("Resources") or {}).values():
        if rsc.get("Type") == "AWS::Serverless::Function":
            rsc.setdefault("Properties", {})["CodeUri"] = dict(PLACEHOLDER_CODE)

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=args.region))
    try:
        out = translator.translate(
            template,
            parameter_values=params,
            passthrough_metadata=True,
            get_managed_policy_map=no_managed_policies,
        )
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{args.template}: {cause.message}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
