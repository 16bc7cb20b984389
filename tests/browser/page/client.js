// What browser clients of product-api do, from another origin: axios with its query-string
// serialisation (empty and undefined values), JSON requests with the headers clients send,
// exposed response headers, a multipart upload, and an EventSource with both `onmessage`
// (as the Node.js service's web app listens) and named listeners. Returns what it observed;
// tests/browser/run.mjs asserts on it.

const EVENT_TYPES = ['connected', 'ProductCreated', 'ProductUpdated', 'ProductDeleted',
  'LowStockWarning', 'ImportCompleted'];

async function until(check, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Opens the seller's stream as the Node.js service's web app does (seller in the query). */
function listen(api, seller) {
  const seen = { onmessage: [], named: [], errors: 0, source: null };
  const source = new EventSource(`${api}/api/events/stream?sellerId=${encodeURIComponent(seller)}`);
  source.onmessage = (e) => seen.onmessage.push(JSON.parse(e.data));
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (e) =>
      seen.named.push({ type, lastEventId: e.lastEventId, data: JSON.parse(e.data) }));
  }
  source.onerror = () => { seen.errors += 1; };
  seen.source = source;
  return seen;
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
