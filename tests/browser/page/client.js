// What browser clients of product-api do, from another origin: axios with its query-string
// serialisation (empty and undefined values), JSON requests with the headers clients send,
// exposed response headers, a multipart upload, and an EventSource with both `onmessage`
// (as the Node.js service's web app listens) and named listeners; and, against a server with
// AUTH_MODE=jwt, an app holding a bearer token (the Authorization header on axios calls,
// `access_token` in the EventSource URL, which cannot carry headers). Returns what it
// observed; tests/browser/run.mjs asserts on it.

const EVENT_TYPES = ['connected', 'ProductCreated', 'ProductUpdated', 'ProductDeleted',
  'LowStockWarning', 'ImportCompleted'];

async function until(check, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Opens the stream at `url`, recording every frame (`onmessage` and named) and error. */
function subscribe(url) {
  const seen = { onmessage: [], named: [], errors: 0, source: null };
  const source = new EventSource(url);
  source.onmessage = (e) => seen.onmessage.push(JSON.parse(e.data));
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (e) =>
      seen.named.push({ type, lastEventId: e.lastEventId, data: JSON.parse(e.data) }));
  }
  source.onerror = () => { seen.errors += 1; };
  seen.source = source;
  return seen;
}

/** Opens the seller's stream as the Node.js service's web app does (seller in the query). */
function listen(api, seller) {
  return subscribe(`${api}/api/events/stream?sellerId=${encodeURIComponent(seller)}`);
}

function summary(resp, pick = []) {
  const headers = Object.fromEntries(pick.map((h) => [h, resp.headers[h] ?? null]));
  return { status: resp.status, data: resp.data, headers };
}

/** Every operation a browser app needs, cross-origin. */
window.fullScenario = async function (api, seller) {
  const stream = listen(api, seller);
  await until(() => stream.named.some((f) => f.type === 'connected'), 'the stream connects');

  const http = axios.create({
    baseURL: `${api}/api`,
    headers: { 'X-Seller-Id': seller },
    validateStatus: () => true,
  });
  const exposed = ['etag', 'location', 'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining',
    'x-ratelimit-reset', 'ratelimit', 'ratelimit-policy'];
  const out = {};

  const body = { name: 'Browser Mouse', price: 19.99, quantity: 12, category: 'Electronics' };
  const created = await http.post('/products', body, {
    headers: { 'Idempotency-Key': `browser-${seller}`, 'X-Request-Id': `req-${seller}` },
  });
  out.create = summary(created, exposed);
  const replayed = await http.post('/products', body, {
    headers: { 'Idempotency-Key': `browser-${seller}` },
  });
  out.replay = summary(replayed);
  const id = created.data.id;

  // The web app's list request, verbatim: a cleared category box is `category=`.
  const list = await http.get('/products', {
    params: { page: 1, limit: 20, category: '', sort_by: 'created_at', sort_order: 'desc',
      min_quantity: undefined },
  });
  out.list = { ...summary(list, exposed), url: list.request.responseURL };
  const filtered = await http.get('/products', { params: { category: 'Electronics', q: '' } });
  out.filtered = summary(filtered);
  const other = await http.get('/products', { params: { category: 'Garden' } });
  out.otherCategory = summary(other);

  const etag = created.headers.etag;
  out.notModified = summary(await http.get(`/products/${id}`, { headers: { 'If-None-Match': etag } }));
  const updated = await http.put(`/products/${id}`, { price: 24.5 }, { headers: { 'If-Match': etag } });
  out.update = summary(updated, ['etag']);
  out.staleUpdate = summary(await http.put(`/products/${id}`, { price: 25 }, { headers: { 'If-Match': etag } }));
  const adjusted = await http.post(`/products/${id}/quantity-adjustments`, { delta: -5, reason: 'sale' });
  out.adjust = summary(adjusted, ['etag']);

  const csv = 'name,price,quantity,category\nImported Lamp,12.5,40,Home\nImported Rug,80,3,Home\n';
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'products.csv');
  const imported = await http.post('/products/import', form);
  out.import = summary(imported, ['location']);
  let status;
  for (let i = 0; i < 100; i += 1) {
    status = await http.get(`/products/import/${imported.data.import_id}`);
    if (['completed', 'failed', 'cancelled'].includes(status.data.status)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  out.importStatus = summary(status);

  const deleted = await http.delete(`/products/${id}`, { headers: { 'If-Match': adjusted.headers.etag } });
  out.delete = summary(deleted);
  out.afterDelete = summary(await http.get('/products', { params: { category: '' } }));

  await until(() => ['ProductDeleted', 'ImportCompleted'].every(
    (t) => stream.named.some((f) => f.type === t)), 'the delete and the import reach the stream');
  stream.source.close();
  return { out, onmessage: stream.onmessage, named: stream.named, streamErrors: stream.errors };
};

/** A write and a stream from an origin the deployment does not list: the browser must block. */
window.refusedScenario = async function (api, seller) {
  const stream = listen(api, seller);
  const http = axios.create({ baseURL: `${api}/api`, headers: { 'X-Seller-Id': seller } });
  let outcome;
  try {
    const resp = await http.post('/products',
      { name: 'Blocked', price: 1, quantity: 1, category: 'Nope' });
    outcome = { status: resp.status };
  } catch (e) {
    outcome = { error: e.code, status: e.response?.status ?? null };
  }
  await until(() => stream.errors > 0, 'the stream fails');
  const readyState = stream.source.readyState;
  stream.source.close();
  return { outcome, streamErrors: stream.errors, readyState, onmessage: stream.onmessage };
};

/** Reads an axios answer, or the failure the browser showed instead of one. */
async function attempt(call, pick = []) {
  try {
    return summary(await call(), pick);
  } catch (e) {
    return { error: e.code, status: e.response?.status ?? null };
  }
}

/**
 * A browser app holding a bearer token (jwt mode): `token` is the seller's, `tokens` others
 * minted by the test: `other` (another seller), `readOnly` (products:read only), `expired`.
 */
window.tokenScenario = async function (api, token, tokens) {
  const streamUrl = `${api}/api/events/stream`;
  const stream = subscribe(`${streamUrl}?access_token=${encodeURIComponent(token)}`);
  const noToken = subscribe(streamUrl);
  await until(() => stream.named.some((f) => f.type === 'connected'), 'the stream connects');
  await until(() => noToken.errors > 0, 'the stream without a token fails');
  const noTokenState = noToken.source.readyState;
  noToken.source.close();

  const client = (bearer) => axios.create({
    baseURL: `${api}/api`,
    headers: bearer ? { Authorization: `Bearer ${bearer}` } : {},
    validateStatus: () => true,
  });
  const http = client(token);
  const out = {};
  const body = { name: 'Token Keyboard', price: 49.5, quantity: 3, category: 'Electronics' };
  out.create = await attempt(() => http.post('/products', body, {
    headers: { 'Idempotency-Key': `token-${Date.now()}` },
  }), ['etag', 'location', 'x-ratelimit-limit']);
  const id = out.create.data?.id;
  out.list = await attempt(() => http.get('/products', { params: { page: 1, limit: 20, category: '' } }));
  out.get = await attempt(() => http.get(`/products/${id}`), ['etag']);

  // No token, a bad one, too narrow a one, another seller's: each refused in a way JS can read.
  out.anonymousList = await attempt(() => client(null).get('/products'), ['www-authenticate']);
  out.anonymousCreate = await attempt(() => client(null).post('/products', body));
  out.expired = await attempt(() => client(tokens.expired).get('/products'), ['www-authenticate']);
  out.readOnlyCreate = await attempt(() => client(tokens.readOnly).post('/products', body));
  out.readOnlyList = await attempt(() => client(tokens.readOnly).get('/products'));
  out.otherGet = await attempt(() => client(tokens.other).get(`/products/${id}`));
  out.otherList = await attempt(() => client(tokens.other).get('/products'));

  await until(() => stream.named.some((f) => f.type === 'ProductCreated'),
    'the created product reaches the stream');
  stream.source.close();
  return {
    out,
    onmessage: stream.onmessage,
    named: stream.named,
    streamErrors: stream.errors,
    noToken: { errors: noToken.errors, readyState: noTokenState, onmessage: noToken.onmessage },
  };
};
