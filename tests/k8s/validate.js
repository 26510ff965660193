// Checks each Kubernetes object on stdin (a JSON array) against the API's own OpenAPI schema,
// with the kubernetes-models package (its models validate with ajv against the schemas
// generated from the Kubernetes API). Usage: node validate.js MODULES_DIR < objects.json
// Prints "PASS kind/name" or "FAIL kind/name why" per object.
"use strict";
const path = require("path");
const modules = process.argv[2];
const objects = JSON.parse(require("fs").readFileSync(0, "utf8"));

for (const obj of objects) {
  const name = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : ["", obj.apiVersion];
  const file = path.join(modules, "kubernetes-models", group, version, obj.kind);
  let Model;
  try {
    Model = require(file)[obj.kind];
  } catch (e) {
    console.log(`FAIL ${name} no schema for ${obj.apiVersion} ${obj.kind}`);
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`PASS ${name}`);
  } catch (e) {
    const why = (e.errors || []).map((x) => `${x.instancePath} ${x.message}`).join("; ");
    console.log(`FAIL ${name} ${why || e.message}`);
  }
}
