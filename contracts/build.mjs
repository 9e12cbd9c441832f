// Compiles contracts/src with the pinned npm solc (tools/node_modules/solc) into
// committed artifacts contracts/out/<ContractName>.json = {contractName, abi, bytecode, deployedBytecode}.
//
//   node contracts/build.mjs          # (re)write the artifacts
//   node contracts/build.mjs --check  # exit 1 if the committed artifacts differ from a fresh build
//
// Settings are fixed (no metadata hash, fixed EVM version, sorted inputs) so the output is
// deterministic and `--check` is meaningful.
import { createRequire } from "node:module";
import { readFileSync, readdirSync, writeFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const toolsModules = join(root, "tools", "node_modules");
const srcDir = join(here, "src");
const outDir = join(here, "out");

if (!existsSync(join(toolsModules, "solc"))) {
  console.error(`error: solc not found in ${toolsModules}; run: npm ci --prefix tools`);
  process.exit(2);
}
const require = createRequire(join(toolsModules, "solc", "package.json"));
const solc = require("solc");

/// Deployable contracts that get an artifact. Interfaces and abstract bases do not.
const DEPLOYABLE = [
  "DataRegistry",
  "DataRefinerRegistry",
  "DataPortabilityPermissions",
  "DataPortabilityGrantees",
  "DataPortabilityServers",
  "TeePoolPhala",
  "DataLiquidityPool",
  "RewardToken",
  "BatchFunder",
  "ERC1967Proxy",
];

function listSol(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listSol(p));
    else if (name.endsWith(".sol")) out.push(p);
  }
  return out;
}

const sources = {};
for (const file of listSol(srcDir)) {
  sources[relative(here, file).split("\\").join("/")] = { content: readFileSync(file, "utf8") };
}
// The proxy comes straight from the pinned OpenZeppelin package.
sources["@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol"] = {
  content: readFileSync(join(toolsModules, "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol"), "utf8"),
};

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

function findImports(path) {
  for (const base of [toolsModules, here]) {
    const p = join(base, path);
    if (existsSync(p)) return { contents: readFileSync(p, "utf8") };
  }
  return { error: `import not found: ${path}` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) {
  if (e.severity !== "error") console.error(e.formattedMessage.trim());
}
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  console.error(`error: solc ${solc.version()} failed with ${errors.length} error(s)`);
  process.exit(1);
}

const artifacts = {};
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (!DEPLOYABLE.includes(name)) continue;
    if (artifacts[name]) {
      console.error(`error: contract name ${name} is defined twice (${file})`);
      process.exit(1);
    }
    const art = {
      contractName: name,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    const size = c.evm.deployedBytecode.object.length / 2;
    if (size > 24576) {
      console.error(`error: ${name} runtime code is ${size} bytes, above the EIP-170 limit of 24576`);
      process.exit(1);
    }
    artifacts[name] = JSON.stringify(art, null, 2) + "\n";
  }
}
for (const name of DEPLOYABLE) {
  if (!artifacts[name]) {
    console.error(`error: no compiled contract named ${name}`);
    process.exit(1);
  }
}

const check = process.argv.includes("--check");
let stale = [];
for (const name of DEPLOYABLE) {
  const path = join(outDir, `${name}.json`);
  if (check) {
    if (!existsSync(path) || readFileSync(path, "utf8") !== artifacts[name]) stale.push(relative(root, path));
  } else {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path, artifacts[name]);
    console.log(`wrote ${relative(root, path)} (${(JSON.parse(artifacts[name]).deployedBytecode.length - 2) / 2} bytes runtime)`);
  }
}
if (check) {
  const extra = existsSync(outDir)
    ? readdirSync(outDir).filter((f) => f.endsWith(".json") && !DEPLOYABLE.includes(f.slice(0, -5)))
    : [];
  stale.push(...extra.map((f) => `contracts/out/${f} (no such contract)`));
  if (stale.length) {
    console.error(`error: contract artifacts are stale: ${stale.join(", ")}\nrun: node contracts/build.mjs`);
    process.exit(1);
  }
  console.log(`contract artifacts are up to date (${DEPLOYABLE.length} contracts, solc ${solc.version()})`);
}
