// Screenshots a page in the headless Chromium that the pinned npm package
// @sparticuz/chromium ships inside its tarball (a chrome-headless-shell build for
// x86-64 Linux), for the report's browser test (crates/engine/tests/report_html.rs).
// `npm ci --prefix tools` is all it needs: no browser download, no system package.
//
//   node tools/chromium-screenshot.mjs PAGE OUT.png [WIDTH HEIGHT]
//
// PAGE is a path or a URL; the PNG is WIDTH x HEIGHT CSS pixels (default
// 1280 x 2400) at scale 1. Exit 0 with OUT.png written, or 1 with the reason.
//
// Written by hand, for two reasons:
// - the package's own `executablePath()` unpacks into a shared /tmp/chromium and
//   reuses whatever it finds there; here each package version is unpacked once into
//   tools/node_modules/.cache/, next to the package it came from, and a half-written
//   unpack is never used (it is renamed into place whole);
// - headless_shell's own `--screenshot` flag hangs on Debian (the page never
//   loads), while the DevTools protocol works. It runs over `--remote-debugging-pipe`
//   (NUL-separated JSON on fds 3 and 4): no port, no WebSocket client. puppeteer-core
//   would drive the same five commands but is a large dependency for them.

import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { brotliDecompressSync } from "node:zlib";

const TIMEOUT_MS = 90_000;

function fail(message) {
  process.stderr.write(`chromium-screenshot: ${message}\n`);
  process.exit(1);
}

const [page, out, width = "1280", height = "2400"] = process.argv.slice(2);
if (!page || !out) {
  fail("usage: node tools/chromium-screenshot.mjs PAGE OUT.png [WIDTH HEIGHT]");
}
const [w, h] = [Number(width), Number(height)];
if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0) {
  fail(`WIDTH and HEIGHT must be positive integers, got ${width} x ${height}`);
}
if (process.platform !== "linux" || process.arch !== "x64") {
  fail(`@sparticuz/chromium ships an x86-64 Linux browser; this is ${process.platform}/${process.arch}`);
}

const tools = dirname(fileURLToPath(import.meta.url));
const pkg = join(tools, "node_modules", "@sparticuz", "chromium");
if (!existsSync(join(pkg, "package.json"))) {
  fail(`${pkg} is missing: install the pinned npm tools with \`npm ci --prefix tools\``);
}
const version = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;

/** Unpacks the package's brotli files once; returns the directory holding `chromium`. */
function unpack() {
  const cache = join(tools, "node_modules", ".cache");
  const dir = join(cache, `sparticuz-chromium-${version}`);
  if (existsSync(join(dir, "chromium"))) return dir;
  // A directory without the browser is not an unpack of ours (e.g. what is left when
  // `npm ci` emptied node_modules under a running browser): replace it.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  const part = mkdtempSync(`${dir}.partial-`);
  const inflate = (name) => brotliDecompressSync(readFileSync(join(pkg, "bin", name)));
  // lib/ (NSS, NSPR, expat: the browser's only libraries beyond glibc), the
  // SwiftShader GL libraries beside the binary, and fonts/ (Open Sans).
  for (const name of ["al2023.tar.br", "swiftshader.tar.br", "fonts.tar.br"]) {
    writeFileSync(join(part, "unpack.tar"), inflate(name));
    execFileSync("tar", ["-xf", "unpack.tar"], { cwd: part });
    rmSync(join(part, "unpack.tar"));
  }
  // The package's fonts.conf names Lambda's directories; point it at ours.
  writeFileSync(
    join(part, "fonts.conf"),
    `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n` +
      `  <dir>${dir}/fonts</dir>\n  <dir>/usr/share/fonts</dir>\n` +
      // The font cache lives outside `dir`, so a running browser never recreates
      // `dir` (fontconfig makes its cache directory's parents) once it is gone.
      `  <cachedir>${dir}-fonts-cache</cachedir>\n</fontconfig>\n`,
  );
  writeFileSync(join(part, "chromium"), inflate("chromium.br"), { mode: 0o755 });
  try {
    renameSync(part, dir);
  } catch (e) {
    // Another process unpacked it first: use theirs.
    rmSync(part, { recursive: true, force: true });
    if (!existsSync(join(dir, "chromium"))) throw e;
  }
  return dir;
}

const dir = unpack();
const url = /^[a-z]+:/.test(page) ? page : pathToFileURL(resolve(page)).href;
const profile = mkdtempSync(join(tmpdir(), "vana-load-chromium-"));
const child = spawn(
  join(dir, "chromium"),
  [
    "--no-sandbox",
    "--no-zygote",
    "--single-process",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
    `--user-data-dir=${profile}`,
    "about:blank",
  ],
  {
    stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
    env: {
      ...process.env,
      LD_LIBRARY_PATH: [join(dir, "lib"), process.env.LD_LIBRARY_PATH].filter(Boolean).join(":"),
      FONTCONFIG_PATH: dir,
    },
  },
);

let done = false;
let stderr = "";
child.stdio[2].on("data", (d) => {
  stderr = (stderr + d).slice(-4000);
});
const cleanup = () => {
  child.kill("SIGKILL");
  rmSync(profile, { recursive: true, force: true });
};
const timer = setTimeout(() => {
  cleanup();
  fail(`no screenshot of ${url} within ${TIMEOUT_MS / 1000} s; Chromium's stderr:\n${stderr}`);
}, TIMEOUT_MS);
child.on("exit", (code, signal) => {
  if (!done) {
    cleanup();
    fail(`Chromium exited (${signal ?? code}) before the screenshot; its stderr:\n${stderr}`);
  }
});
child.on("error", (e) => fail(`cannot start ${join(dir, "chromium")}: ${e.message}`));

// The DevTools protocol over the pipe: requests on fd 3, answers and events on fd 4.
let nextId = 0;
const pending = new Map();
const listeners = new Set();
let buffer = "";
child.stdio[4].setEncoding("utf8");
child.stdio[4].on("data", (chunk) => {
  buffer += chunk;
  for (let end; (end = buffer.indexOf("\0")) >= 0; ) {
    const message = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (message.id !== undefined && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    } else {
      for (const listener of listeners) listener(message);
    }
  }
});
function send(method, params = {}, sessionId = undefined) {
  return new Promise((resolveSend) => {
    const id = ++nextId;
    pending.set(id, (message) => {
      if (message.error) fail(`${method}: ${message.error.message}`);
      resolveSend(message.result);
    });
    child.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + "\0");
  });
}

const { targetId } = await send("Target.createTarget", { url: "about:blank" });
const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
await send("Page.enable", {}, sessionId);
await send(
  "Emulation.setDeviceMetricsOverride",
  { width: w, height: h, deviceScaleFactor: 1, mobile: false },
  sessionId,
);
const loaded = new Promise((resolveLoad) =>
  listeners.add((m) => m.sessionId === sessionId && m.method === "Page.loadEventFired" && resolveLoad()),
);
const navigation = await send("Page.navigate", { url }, sessionId);
if (navigation.errorText) fail(`cannot load ${url}: ${navigation.errorText}`);
await loaded;
const { data } = await send("Page.captureScreenshot", { format: "png" }, sessionId);
writeFileSync(out, Buffer.from(data, "base64"));
done = true;
clearTimeout(timer);
cleanup();
