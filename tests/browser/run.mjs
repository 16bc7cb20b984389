// Real-browser tests: Debian's Chromium, headless, driven by playwright-core.
//
// A page served from a second origin (page/, on its own port) calls product-api the way
// browser apps do (see page/client.js); Swagger UI at /docs/ is used as a person would. Each
// server runs the real binary on the embedded default (an SQLite file, in-process limiter and
// bus, Kafka off): only the variables named here are set, none inherited. Most run in the
// default header mode (X-Seller-Id); the token tests run AUTH_MODE=jwt with an HS256 secret,
// the page holding tokens minted here (node:crypto) as an app holds its identity provider's.
//
// Run by scripts/browser-tests: node --test tests/browser/run.mjs
// Variables: PRODUCT_API_BIN (default target/debug/product-api), CHROMIUM (/usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const binary = process.env.PRODUCT_API_BIN ?? path.join(root, 'target/debug/product-api');

async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts product-api on the embedded default plus `extra`; resolves once it is ready. */
async function startServer(extra = {}) {
  const port = await freePort();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'product-api-browser-'));
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    SHUTDOWN_DELAY_SECS: '0',
    LOG_FORMAT: 'json',
    ...extra,
  };
  const child = spawn(binary, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => { log = (log + chunk).slice(-4000); });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`product-api exited at start:\n${log}`);
    try {
      if ((await fetch(`${base}/health/ready`)).ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`product-api not ready after 30 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The test page's origin: a static server of page/ and axios's browser bundle. */
async function startPageServer() {
  const files = {
    '/': [path.join(here, 'page/index.html'), 'text/html'],
    '/client.js': [path.join(here, 'page/client.js'), 'text/javascript'],
    '/axios.min.js': [path.join(here, 'node_modules/axios/dist/axios.min.js'), 'text/javascript'],
  };
  const server = http.createServer(async (req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file[1] }).end(await fs.readFile(file[0]));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { origin: `http://127.0.0.1:${server.address().port}`, server };
}

let browser;
let pages;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  pages = await startPageServer();
});

after(async () => {
  await browser?.close();
  pages?.server.close();
});

/** Runs `fn` on a new page of the test origin, with product-api configured by `extra`. */
async function withApp(extra, fn) {
  const app = await startServer(typeof extra === 'function' ? extra(pages.origin) : extra);
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    await page.goto(`${pages.origin}/`);
    return await fn(page, app, problems);
  } finally {
    await context.close();
    await app.stop();
  }
}

function seller() {
  return `seller-browser${Math.random().toString(36).slice(2, 10)}`;
}

/** The bearer-token configuration of the token tests: an HS256 secret, issuer and audience. */
const JWT = {
  AUTH_MODE: 'jwt',
  AUTH_JWT_SECRET: 'browser-tests-hs256-secret-0123456789abcdef',
  AUTH_ISSUER: 'https://id.browser.test/',
  AUTH_AUDIENCE: 'product-api',
};
const ALL_SCOPES = 'products:read products:write imports:write';

/**
 * A JWT for `who`, HS256-signed with the configured secret; `claims` overrides or adds claims
 * (`exp` in the past for an expired token), `secret` signs with another key.
 */
function mintToken(who, { scope = ALL_SCOPES, claims = {}, secret = JWT.AUTH_JWT_SECRET } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signed = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({
    iss: JWT.AUTH_ISSUER,
    aud: JWT.AUTH_AUDIENCE,
    sub: `user-of-${who}`,
    seller_id: who,
    scope,
    iat: now,
    nbf: now - 5,
    exp: now + 300,
    ...claims,
  })}`;
  const signature = crypto.createHmac('sha256', secret).update(signed).digest('base64url');
  return `${signed}.${signature}`;
}

async function assertFullScenario(page, app) {
  const who = seller();
  const { out, onmessage, named } = await page.evaluate(
    ([api, s]) => window.fullScenario(api, s), [app.base, who]);
  const id = out.create.data.id;

  assert.equal(out.create.status, 201, JSON.stringify(out.create));
  assert.match(out.create.headers.etag, /^(W\/)?"/);
  assert.equal(out.create.headers.location, `/api/products/${id}`);
  assert.equal(out.create.headers['x-request-id'], `req-${who}`);
  assert.equal(out.create.headers['x-ratelimit-limit'], '100');
  assert.match(out.create.headers['x-ratelimit-remaining'], /^\d+$/);
  assert.match(out.create.headers['x-ratelimit-reset'], /^\d+$/);
  assert.ok(out.create.headers.ratelimit, 'RateLimit is exposed');
  assert.ok(out.create.headers['ratelimit-policy'], 'RateLimit-Policy is exposed');
  assert.equal(out.replay.status, 201);
  assert.equal(out.replay.data.id, id, 'the idempotent retry replays the first answer');

  assert.equal(out.list.status, 200, JSON.stringify(out.list.data));
  assert.match(out.list.url, /[?&]category=(&|$)/, 'axios sent the cleared filter');
  assert.deepEqual(out.list.data.data.map((p) => p.name), ['Browser Mouse']);
  assert.equal(out.list.data.pagination.total, 1);
  assert.equal(out.list.headers['x-ratelimit-limit'], '100');
  assert.deepEqual(out.filtered.data.data.map((p) => p.id), [id]);
  assert.equal(out.otherCategory.data.pagination.total, 0);

  assert.equal(out.notModified.status, 304);
  assert.equal(out.update.status, 200, JSON.stringify(out.update.data));
  assert.equal(out.update.data.price, 24.5);
  assert.notEqual(out.update.headers.etag, out.create.headers.etag);
  assert.equal(out.staleUpdate.status, 412);
  assert.equal(out.staleUpdate.data.error_code, 'PRECONDITION_FAILED');
  assert.equal(out.adjust.status, 200, JSON.stringify(out.adjust.data));
  assert.equal(out.adjust.data.quantity, 7);

  assert.equal(out.import.status, 202, JSON.stringify(out.import.data));
  assert.ok(out.import.data.import_id);
  assert.equal(out.import.headers.location, `/api/products/import/${out.import.data.import_id}`);
  assert.equal(out.importStatus.data.status, 'completed', JSON.stringify(out.importStatus.data));
  assert.equal(out.importStatus.data.created, 2);

  assert.equal(out.delete.status, 200, JSON.stringify(out.delete.data));
  assert.equal(out.delete.data.deleted_id, id);
  assert.deepEqual(out.afterDelete.data.data.map((p) => p.name).sort(), ['Imported Lamp', 'Imported Rug']);

  // The old web app's listener: `onmessage` fires once, on connect, with the old fields.
  assert.equal(onmessage.length, 1, JSON.stringify(onmessage));
  assert.equal(onmessage[0].type, 'connected');
  assert.equal(onmessage[0].sellerId, who);
  assert.equal(onmessage[0].message, 'SSE connection established');
  assert.ok(onmessage[0].timestamp > 0);
  // Named listeners get every change, with ids to resume from.
  const types = named.map((f) => f.type);
  assert.equal(types[0], 'connected');
  for (const t of ['ProductCreated', 'ProductUpdated', 'LowStockWarning', 'ProductDeleted', 'ImportCompleted']) {
    assert.ok(types.includes(t), `${t} in ${types}`);
  }
  const created = named.filter((f) => f.type === 'ProductCreated');
  assert.deepEqual(created.map((f) => f.data.data.name).sort(), ['Browser Mouse', 'Imported Lamp', 'Imported Rug']);
  for (const f of named.filter((f) => f.type !== 'connected')) {
    assert.match(f.lastEventId, /^\d+$/, `${f.type} carries an id`);
    assert.equal(f.data.type, f.type);
    assert.ok(f.data.message, `${f.type} has a message`);
  }
}

test('the web app flow works cross-origin on the default configuration', async () => {
  await withApp({}, async (page, app, problems) => {
    await assertFullScenario(page, app);
    assert.deepEqual(problems, []);
  });
});

test('a configured list that names the page origin admits it', async () => {
  await withApp((origin) => ({ CORS_ALLOWED_ORIGINS: `https://admin.example,${origin}` }),
    async (page, app, problems) => {
      await assertFullScenario(page, app);
      assert.deepEqual(problems, []);
    });
});

test('an origin outside the configured list is refused and changes nothing', async () => {
  await withApp({ CORS_ALLOWED_ORIGINS: 'https://admin.example' }, async (page, app) => {
    const who = seller();
    const got = await page.evaluate(([api, s]) => window.refusedScenario(api, s), [app.base, who]);
    assert.equal(got.outcome.error, 'ERR_NETWORK', JSON.stringify(got));
    assert.equal(got.outcome.status, null, 'the browser shows the page no answer');
    assert.ok(got.streamErrors > 0);
    assert.equal(got.readyState, 2, 'the EventSource gave up (CLOSED)');
    assert.deepEqual(got.onmessage, []);
    // Checked from outside the browser: nothing was created.
    const list = await (await fetch(`${app.base}/api/products`, { headers: { 'X-Seller-Id': who } })).json();
    assert.equal(list.pagination.total, 0, JSON.stringify(list));
  });
});

/** In Swagger UI: Authorize `scheme` (its name in the contract) with `value`, then close. */
async function authorizeInSwagger(page, scheme, value) {
  await page.locator('button.authorize').first().click();
  const container = page.locator('.auth-container')
    .filter({ has: page.locator('h4 code', { hasText: new RegExp(`^${scheme}$`) }) });
  await container.locator('input').fill(value);
  await container.locator('button.authorize').click();
  await page.locator('button.btn-done').first().click();
}

/** In Swagger UI: Try it out listProducts; the answer as the network and the page show it. */
async function tryListProducts(page, app) {
  const op = page.locator('#operations-Products-listProducts');
  await op.locator('.opblock-summary').click();
  await op.locator('button.try-out__btn').click();
  const answered = page.waitForResponse((r) => r.url().startsWith(`${app.base}/api/products?`) || r.url() === `${app.base}/api/products`);
  await op.locator('button.execute').click();
  const resp = await answered;
  const shown = op.locator('.live-responses-table tr.response');
  await shown.first().waitFor();
  return {
    status: resp.status(),
    request: resp.request(),
    shownStatus: (await shown.locator('.response-col_status').first().innerText()).trim(),
    shownBody: await shown.locator('.response-col_description').first().innerText(),
  };
}

test('Swagger UI loads the served contract, lists every operation and runs listProducts', async () => {
  await withApp({}, async (_page, app) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      const contract = await (await fetch(`${app.base}/api/openapi.json`)).json();
      const operations = Object.values(contract.paths)
        .flatMap((item) => Object.keys(item).filter((m) => ['get', 'put', 'post', 'delete', 'patch'].includes(m)));
      const loaded = page.waitForResponse((r) => r.url() === `${app.base}/api/openapi.json`);
      await page.goto(`${app.base}/docs/`);
      assert.equal((await loaded).status(), 200, 'Swagger UI fetched /api/openapi.json');
      await page.locator('.opblock').first().waitFor();
      assert.equal(await page.locator('.opblock').count(), operations.length);

      const who = seller();
      await fetch(`${app.base}/api/products`, {
        method: 'POST',
        headers: { 'X-Seller-Id': who, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'Docs Lamp', price: 5, quantity: 1, category: 'Home' }),
      });
      // The contract offers two schemes (SellerIdHeader, BearerToken): header mode takes the first.
      await authorizeInSwagger(page, 'SellerIdHeader', who);
      const got = await tryListProducts(page, app);
      assert.equal(got.status, 200, got.shownBody);
      assert.equal(got.shownStatus, '200');
      assert.match(got.shownBody, /Docs Lamp/);
    } finally {
      await context.close();
    }
  });
});

test('with AUTH_MODE=jwt the page acts with its bearer token, cross-origin', async () => {
  await withApp(JWT, async (page, app, problems) => {
    const who = seller();
    const other = seller();
    const token = mintToken(who);
    const tokens = {
      other: mintToken(other),
      readOnly: mintToken(who, { scope: 'products:read' }),
      expired: mintToken(who, { claims: { iat: 1, nbf: 1, exp: Math.floor(Date.now() / 1000) - 600 } }),
    };
    const got = await page.evaluate(([api, t, ts]) => window.tokenScenario(api, t, ts),
      [app.base, token, tokens]);
    const { out } = got;
    const id = out.create.data?.id;

    // Authorization on a cross-origin call needs a preflight that allows it: these got through.
    assert.equal(out.create.status, 201, JSON.stringify(out.create));
    assert.equal(out.create.data.seller_id, who, 'created for the token\'s seller');
    assert.equal(out.create.headers.location, `/api/products/${id}`);
    assert.match(out.create.headers.etag, /^(W\/)?"/);
    assert.equal(out.list.status, 200, JSON.stringify(out.list));
    assert.deepEqual(out.list.data.data.map((p) => p.id), [id], 'the list shows the token\'s product');
    assert.equal(out.get.status, 200, JSON.stringify(out.get));
    assert.equal(out.get.data.name, 'Token Keyboard');

    // Refusals reach the page as answers it can read, not as network errors.
    for (const [name, call, status, code] of [
      ['a list without a token', out.anonymousList, 401, 'MISSING_TOKEN'],
      ['a create without a token', out.anonymousCreate, 401, 'MISSING_TOKEN'],
      ['a list with an expired token', out.expired, 401, 'INVALID_TOKEN'],
      ['a create with a read-only token', out.readOnlyCreate, 403, 'INSUFFICIENT_SCOPE'],
    ]) {
      assert.equal(call.status, status, `${name}: ${JSON.stringify(call)}`);
      assert.equal(call.data.error_code, code, `${name}: ${JSON.stringify(call.data)}`);
    }
    // The challenge is an exposed header: an app can tell "sign in" from "token rejected".
    assert.equal(out.anonymousList.headers['www-authenticate'], 'Bearer realm="product-api"');
    assert.equal(out.expired.headers['www-authenticate'],
      'Bearer realm="product-api", error="invalid_token"');
    assert.equal(out.readOnlyList.status, 200, 'products:read is enough to list');
    assert.equal(out.readOnlyList.data.pagination.total, 1);

    // Another seller's token sees nothing of it.
    assert.equal(out.otherGet.status, 404, JSON.stringify(out.otherGet));
    assert.equal(out.otherList.status, 200, JSON.stringify(out.otherList));
    assert.equal(out.otherList.data.pagination.total, 0, 'another seller lists none');

    // The EventSource, which cannot send headers, carries the token in the query.
    assert.equal(got.onmessage.length, 1, JSON.stringify(got.onmessage));
    assert.equal(got.onmessage[0].type, 'connected');
    assert.equal(got.onmessage[0].sellerId, who, 'the stream is the token\'s seller\'s');
    const types = got.named.map((f) => f.type);
    assert.equal(types[0], 'connected', types.join());
    const created = got.named.filter((f) => f.type === 'ProductCreated');
    assert.deepEqual(created.map((f) => f.data.data.productId), [id], JSON.stringify(created));
    assert.equal(created[0].data.data.sellerId, who);
    assert.match(created[0].lastEventId, /^\d+$/);
    assert.equal(got.streamErrors, 0);
    // Without one, the browser gets no stream: the 401 closes the EventSource for good.
    assert.ok(got.noToken.errors > 0);
    assert.equal(got.noToken.readyState, 2, 'the EventSource gave up (CLOSED)');
    assert.deepEqual(got.noToken.onmessage, []);
    assert.deepEqual(problems, []);

    // Checked from outside the browser: the product is the token's seller's.
    const mine = await fetch(`${app.base}/api/products/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(mine.status, 200);
  });
});

test('with AUTH_MODE=jwt Swagger UI runs listProducts with a BearerToken', async () => {
  await withApp(JWT, async (_page, app) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      const who = seller();
      const token = mintToken(who);
      const made = await fetch(`${app.base}/api/products`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'Docs Token Lamp', price: 5, quantity: 1, category: 'Home' }),
      });
      assert.equal(made.status, 201, await made.text());

      await page.goto(`${app.base}/docs/`);
      await page.locator('.opblock').first().waitFor();
      await authorizeInSwagger(page, 'BearerToken', token);
      const got = await tryListProducts(page, app);
      assert.equal(await got.request.headerValue('authorization'), `Bearer ${token}`);
      assert.equal(got.status, 200, got.shownBody);
      assert.equal(got.shownStatus, '200');
      assert.match(got.shownBody, /Docs Token Lamp/);
    } finally {
      await context.close();
    }
  });
});
