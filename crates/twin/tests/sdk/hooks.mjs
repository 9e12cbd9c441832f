// Module-resolution hooks that let plain Node load the published Vana SDK's
// ESM build unmodified. That build (@opendatalabs/vana-sdk 0.1.0-alpha.47bbd13)
// imports relative paths without file extensions ("./core", "../errors") and
// JSON without the `type: "json"` import attribute; Node's ESM loader accepts
// neither. Only imports made from inside the SDK's own files are touched:
//   resolve: a relative specifier Node cannot find is retried with ".js",
//            then "/index.js" (a directory import);
//   load:    a JSON file the SDK imports is served as an ES module whose
//            default export is the parsed JSON (what the attribute would give).
import { readFile } from "node:fs/promises";

const SDK_DIR = "/@opendatalabs/vana-sdk/";

function fromSdk(parentURL) {
  return typeof parentURL === "string" && parentURL.includes(SDK_DIR);
}

export async function resolve(specifier, context, nextResolve) {
  const relative = specifier.startsWith("./") || specifier.startsWith("../");
  if (!relative || !fromSdk(context.parentURL)) {
    return nextResolve(specifier, context);
  }
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND" && error?.code !== "ERR_UNSUPPORTED_DIR_IMPORT") {
      throw error;
    }
    for (const candidate of [`${specifier}.js`, `${specifier}/index.js`]) {
      try {
        return await nextResolve(candidate, context);
      } catch {
        // try the next form
      }
    }
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  if (url.endsWith(".json") && url.includes(SDK_DIR) && context.importAttributes?.type !== "json") {
    const text = await readFile(new URL(url), "utf8");
    JSON.parse(text); // a malformed file fails here, naming nothing else
    return { format: "module", source: `export default ${text};`, shortCircuit: true };
  }
  return nextLoad(url, context);
}
