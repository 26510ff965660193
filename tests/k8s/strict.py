#!/usr/bin/python3
"""Strict decoding of Kubernetes objects (a JSON array on stdin) with the models of the
Kubernetes Python client (python3-kubernetes), generated from the API's OpenAPI definitions:
every field must be one the API knows, at every depth, with the right shape. The schema
validator (validate.js) checks types, formats and required fields; it lets unknown fields
through, as the API server would with a warning, so a misspelt field ("hostPIDs") is caught
here. Prints "PASS kind/name" or "FAIL kind/name path: why" per object."""
import json
import re
import sys

import kubernetes.client as k8s

PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def model_for(api_version, kind):
    version = api_version.split("/")[-1]
    return getattr(k8s, version.capitalize() + kind, None)


def walk(value, typ, path, errors):
    if typ in ("object", "datetime", "date"):
        return
    m = re.fullmatch(r"list\[(.*)\]", typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: not a list")
            return
        for i, v in enumerate(value):
            walk(v, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.*)\)", typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: not an object")
            return
        for k, v in value.items():
            walk(v, m.group(1), f"{path}.{k}", errors)
        return
    if typ in PRIMITIVES:
        if typ == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return  # int-or-string fields (ports, quantities, maxUnavailable) are typed str
        if not isinstance(value, PRIMITIVES[typ]) or (typ != "bool" and isinstance(value, bool)):
            errors.append(f"{path}: not a {typ}")
        return
    cls = getattr(k8s, typ, None)
    if cls is None:
        errors.append(f"{path}: unknown type {typ}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: not an object")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for k, v in value.items():
        if k not in by_json:
            errors.append(f"{path}.{k}: no such field in {typ}")
            continue
        walk(v, cls.openapi_types[by_json[k]], f"{path}.{k}", errors)


def main():
    for obj in json.load(sys.stdin):
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        cls = model_for(obj.get("apiVersion", ""), obj.get("kind", ""))
        if cls is None:
            print(f"FAIL {name} no model for {obj.get('apiVersion')} {obj.get('kind')}")
            continue
        errors = []
        walk(obj, cls.__name__, "", errors)
        print(f"PASS {name}" if not errors else f"FAIL {name} {'; '.join(errors[:5])}")


if __name__ == "__main__":
    main()
