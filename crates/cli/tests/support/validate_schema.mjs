// Validates JSON documents against a JSON Schema with ajv, an independent
// validator (vana-load generates its schemas from its own types, so checking
// them with its own code would prove little).
//
//   node validate_schema.mjs SCHEMA.json FILE.json [FILE.json ...]
//   node validate_schema.mjs SCHEMA.json --lines FILE.jsonl
//
// Prints one line per invalid document and exits 1 if any is invalid.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.VANA_LOAD_TOOLS + "/package.json");
const Ajv2020 = require("ajv/dist/2020").default;

const [schemaPath, ...rest] = process.argv.slice(2);
const ajv = new Ajv2020({ allErrors: true, strict: false });
// The numeric formats schemars writes for Rust's number types.
for (const f of ["double", "float"]) {
  ajv.addFormat(f, { type: "number", validate: (x) => Number.isFinite(x) });
}
for (const f of ["int8", "int16", "int32", "int64"]) {
  ajv.addFormat(f, { type: "number", validate: (x) => Number.isInteger(x) });
}
for (const f of ["uint", "uint8", "uint16", "uint32", "uint64"]) {
  ajv.addFormat(f, { type: "number", validate: (x) => Number.isInteger(x) && x >= 0 });
}
const validate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));

let docs = [];
if (rest[0] === "--lines") {
  const text = readFileSync(rest[1], "utf8");
  docs = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => [`${rest[1]}:${i + 1}`, JSON.parse(l)]);
} else {
  docs = rest.map((f) => [f, JSON.parse(readFileSync(f, "utf8"))]);
}
let bad = 0;
for (const [name, doc] of docs) {
  if (!validate(doc)) {
    bad += 1;
    console.log(`${name}: ${ajv.errorsText(validate.errors)}`);
  }
}
console.log(`${docs.length - bad} valid, ${bad} invalid`);
process.exit(bad === 0 ? 0 : 1);
