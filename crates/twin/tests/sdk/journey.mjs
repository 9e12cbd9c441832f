// Drives a running twin through the published Vana SDK, unmodified and with
// its own default (Moksha) contract addresses, configured only from the
// twin's manifest (`sdk` section). Run by crates/twin/tests/sdk_interop.rs:
//
//   node --import ./register.mjs journey.mjs <manifest.json>
//
// Environment: VANA_TOOLS_DIR (the repository's tools/, where the SDK and viem
// are installed), VANA_APP_MNEMONIC (the twin's key mnemonic; its index 1 is
// the app, registered as grantee 1).
//
// Each step prints one line `ok <step> <detail>`; the first failure prints
// `FAIL <step>: <error>` and exits 1. Every wait is bounded.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [manifestPath] = process.argv.slice(2);
const toolsDir = process.env.VANA_TOOLS_DIR;
const appMnemonic = process.env.VANA_APP_MNEMONIC;
if (!manifestPath || !toolsDir || !appMnemonic) {
  console.error("usage: VANA_TOOLS_DIR=… VANA_APP_MNEMONIC=… node --import ./register.mjs journey.mjs <manifest.json>");
  process.exit(2);
}
const fromTools = (rel) => import(pathToFileURL(join(toolsDir, "node_modules", rel)).href);
const sdk = await fromTools("@opendatalabs/vana-sdk/dist/index.node.js");
const viem = await fromTools("viem/_esm/index.js");
const accounts = await fromTools("viem/_esm/accounts/index.js");

// The SDK logs every step at debug level; keep the test output to our lines.
console.debug = () => {};
console.info = () => {};
console.log = () => {};

const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
const env = manifest.sdk;
const say = (line) => process.stdout.write(`${line}\n`);

let step = "setup";
function check(condition, message) {
  if (!condition) throw new Error(message);
}
async function until(what, fn, timeoutMs = 30_000, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const chain = {
  ...sdk.mokshaTestnet,
  rpcUrls: { default: { http: [env.rpc_url] } },
};
check(chain.id === env.chain_id, `the twin's chain id ${env.chain_id} is not Moksha's ${chain.id}`);

// The relayer as an app configures it: a callback that POSTs the request to
// the relay route. (The SDK's own `relayer: "<url>"` transport cannot send
// signed requests: it JSON.stringify()s typed data holding BigInts.)
async function relay(request) {
  const response = await fetch(env.relayer_url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
  });
  return response.json();
}

function vanaFor(account) {
  const transport = viem.http(env.rpc_url);
  const walletClient = viem.createWalletClient({ account, chain, transport });
  const publicClient = viem.createPublicClient({ chain, transport });
  const pinata = new sdk.PinataStorage({ jwt: env.pinata_jwt, gatewayUrl: env.ipfs_gateway.replace(/\/ipfs\/?$/, "") });
  pinata.apiUrl = env.pinata_api_url; // a documented public field; the constructor takes no apiUrl
  return sdk.Vana({
    walletClient,
    publicClient,
    relayer: relay,
    subgraphUrl: env.subgraph_url,
    defaultPersonalServerUrl: env.personal_server_url,
    ipfsGateways: [env.ipfs_gateway],
    storage: { providers: { pinata }, defaultProvider: "pinata" },
  });
}

const user = accounts.privateKeyToAccount(accounts.generatePrivateKey());
const app = accounts.mnemonicToAccount(appMnemonic, { addressIndex: 1 });
const vana = vanaFor(user);
const appVana = vanaFor(app);

try {
  step = "addresses";
  for (const name of ["DataRegistry", "DataPortabilityPermissions", "DataPortabilityServers", "DataPortabilityGrantees", "TeePoolPhala", "DataRefinerRegistry"]) {
    const sdkAddress = sdk.getContractAddress(chain.id, name);
    check(
      viem.getAddress(manifest.contracts[name]) === viem.getAddress(sdkAddress),
      `${name}: the SDK uses ${sdkAddress}, the twin has ${manifest.contracts[name]}`,
    );
  }
  say("ok addresses the SDK's default addresses are the twin's");

  step = "identity";
  const identity = await vana.server.getIdentity({ userAddress: user.address });
  check(viem.isAddress(identity.address), `identity address ${identity.address}`);
  check(/^0x04[0-9a-fA-F]{128}$/.test(identity.publicKey), `identity public key ${identity.publicKey}`);
  say(`ok identity ${identity.address}`);

  step = "upload";
  const content = JSON.stringify({ profile: { name: "sdk interop", n: Date.now() } });
  const uploaded = await vana.data.upload({
    content,
    filename: "profile.json",
    permissions: [{ account: identity.address, publicKey: identity.publicKey }],
  });
  check(uploaded.fileId > 0, `fileId ${uploaded.fileId}`);
  check(uploaded.url.startsWith("ipfs://"), `url ${uploaded.url}`);
  say(`ok upload file ${uploaded.fileId} ${uploaded.url}`);

  step = "getUserFiles";
  const file = await until(`file ${uploaded.fileId} in the subgraph`, async () => {
    const files = await vana.data.getUserFiles({ owner: user.address });
    return files.find((f) => Number(f.id) === uploaded.fileId);
  });
  check(file.url === uploaded.url, `subgraph url ${file.url}`);
  say(`ok getUserFiles file ${file.id}`);

  step = "decryptFile";
  const decrypted = await vana.data.decryptFile(file);
  const text = await decrypted.text();
  check(text === content, `decrypted ${text.slice(0, 80)}`);
  say("ok decryptFile the content round-trips");

  step = "grant";
  const granted = await vana.permissions.grant({
    grantee: app.address,
    operation: "llm_inference",
    files: [uploaded.fileId],
    parameters: { prompt: "Summarise {{data}} in one word." },
  });
  const permissionId = BigInt(granted.permissionId);
  check(permissionId > 0n, `permissionId ${granted.permissionId}`);
  const onChain = await vana.permissions.getPermissionInfo(permissionId);
  check(onChain.grant.startsWith("ipfs://"), `grant url ${onChain.grant} (storeGrantFile)`);
  say(`ok grant permission ${permissionId} ${onChain.grant}`);

  step = "createOperation";
  const op = await appVana.server.createOperation({ permissionId: Number(permissionId) });
  check(typeof op.id === "string" && op.id.length > 0, `operation id ${op.id}`);
  const done = await appVana.server.waitForOperation(op.id, { timeout: 60_000, pollingInterval: 250 });
  check(done.status === "succeeded", `operation ${op.id} ended ${done.status}: ${JSON.stringify(done).slice(0, 300)}`);
  say(`ok createOperation ${op.id} succeeded`);

  step = "revoke";
  const revokeTx = await vana.permissions.submitRevokeWithSignature({ permissionId });
  const revoked = await vana.waitForTransactionEvents(revokeTx);
  check(BigInt(revoked.expectedEvents.PermissionRevoked.permissionId) === permissionId, "PermissionRevoked");
  const after = await vana.permissions.getPermissionInfo(permissionId);
  check(after.endBlock > 0n, `permission ${permissionId} still active (endBlock ${after.endBlock})`);
  const ids = await vana.permissions.getUserPermissionIds(user.address);
  check(!ids.map(BigInt).includes(permissionId), `permission ${permissionId} still in the user's set`);
  say(`ok revoke permission ${permissionId}`);

  step = "trust";
  const serverAccount = accounts.privateKeyToAccount(accounts.generatePrivateKey());
  const serverUrl = `${env.personal_server_url}/interop-${Date.now()}`;
  const addTx = await vana.permissions.submitAddAndTrustServerWithSignature({
    serverAddress: serverAccount.address,
    serverUrl,
    publicKey: serverAccount.publicKey,
  });
  const added = await vana.waitForTransactionEvents(addTx);
  const serverId = BigInt(added.expectedEvents.ServerTrusted?.serverId ?? 0n);
  check(serverId > 0n, `ServerTrusted ${JSON.stringify(added.expectedEvents, (_, v) => (typeof v === "bigint" ? `${v}` : v))}`);
  const trusted = await vana.permissions.getTrustedServers(user.address);
  check(trusted.map(BigInt).includes(serverId), `server ${serverId} not trusted: ${trusted}`);
  say(`ok trust server ${serverId}`);

  // Untrusting ends the trust (endBlock) and keeps the id in the user's set, as Vana's contract does.
  const MAX = 2n ** 256n - 1n;
  step = "untrust";
  const untrustTx = await vana.permissions.submitUntrustServerWithSignature({ serverId });
  const untrusted = await vana.waitForTransactionEvents(untrustTx);
  check(BigInt(untrusted.expectedEvents.ServerUntrusted?.serverId ?? 0n) === serverId, "ServerUntrusted");
  const ended = await vana.permissions.getUserTrustedServer(user.address, serverId);
  check(BigInt(ended.endBlock) < MAX, `server ${serverId} still trusted (endBlock ${ended.endBlock})`);
  say(`ok untrust server ${serverId}`);

  step = "trust again";
  const trustTx = await vana.permissions.submitTrustServerWithSignature({ serverId });
  const retrusted = await vana.waitForTransactionEvents(trustTx);
  check(BigInt(retrusted.expectedEvents.ServerTrusted?.serverId ?? 0n) === serverId, "ServerTrusted");
  const again = await vana.permissions.getUserTrustedServer(user.address, serverId);
  check(BigInt(again.endBlock) === MAX, `server ${serverId} not trusted again (endBlock ${again.endBlock})`);
  say(`ok trust-again server ${serverId}`);
} catch (error) {
  const cause = error?.cause?.message ? ` (cause: ${error.cause.message})` : "";
  say(`FAIL ${step}: ${error?.message ?? error}${cause}`);
  process.exit(1);
}
say("ok all");
process.exit(0);
