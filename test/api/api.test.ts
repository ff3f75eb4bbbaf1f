import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { ensureApiToken } from '../../src/api/index.js';
import { listTaskViews, waitForTask } from '../../src/task/index.js';
import { addImage, addVm, apiFixture, type ApiFixture } from './fixture.js';
import { parseEventStream } from './openapi-check.js';

function withApi(fn: (f: ApiFixture) => Promise<void>, options: { provision?: boolean | 'engine' } = {}): () => Promise<void> {
  return async () => {
    const f = await apiFixture(options);
    try {
      await fn(f);
    } finally {
      await f.close();
    }
  };
}

const SPEC = { name: 'desk', image: 'default', persistent: true, size: { max: 3 }, naming: { pattern: 'desk-{n:2}' }, disks: { userData: '256M', disposable: '128M' } };

test('auth: /healthz is open; everything else needs the bearer token (401 without, 403 wrong); the token file is 0600', withApi(async (f) => {
  assert.equal((await f.call({ method: 'GET', url: '/healthz', token: null })).statusCode, 200);
  const none = await f.call({ method: 'GET', url: '/v1/images', token: null });
  assert.equal(none.statusCode, 401);
  assert.equal(none.json().error.code, 'VMFORK_AUTH_REQUIRED');
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  const wrong = await f.call({ method: 'GET', url: '/v1/images', token: `${f.token}x` });
  assert.equal(wrong.statusCode, 403);
  assert.equal(wrong.json().error.code, 'VMFORK_AUTH_INVALID');
  assert.equal((await f.call({ method: 'GET', url: '/openapi.json', token: null })).statusCode, 401);
  assert.equal((await f.call({ method: 'GET', url: '/v1/nothing-here', token: null })).statusCode, 401);
  assert.equal((await f.call({ method: 'GET', url: '/v1/images' })).statusCode, 200);
  assert.equal(statSync(f.tokenPath).mode & 0o777, 0o600);
  assert.equal((await ensureApiToken(f.deps.home)).token, f.token, 'a second start keeps the token');
  assert.ok(!(await f.call({ method: 'GET', url: '/openapi.json' })).body.includes(f.token));
}));

test('every route is in the OpenAPI document, and the document lists no route the server lacks', withApi(async (f) => {
  const doc = (await f.call({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
  const served = f.app.printRoutes({ commonPrefix: false });
  for (const op of documented) {
    const [method, path] = op.split(' ') as [string, string];
    assert.ok(f.app.hasRoute({ method: method as 'GET', url: path.replace(/\{(\w+)\}/g, ':$1') }), `${op} documented but not served\n${served}`);
  }
  for (const must of ['GET /v1/images', 'GET /v1/images/{name}', 'GET /v1/templates', 'GET /v1/templates/{name}', 'GET /v1/networks', 'GET /v1/networks/{name}', 'GET /v1/vms', 'GET /v1/vms/{name}', 'POST /v1/vms/{name}/power-on', 'POST /v1/vms/{name}/power-off', 'POST /v1/vms/{name}/checkpoints', 'GET /v1/vms/{name}/checkpoints', 'POST /v1/vms/{name}/revert', 'DELETE /v1/vms/{name}', 'POST /v1/pools', 'GET /v1/pools', 'GET /v1/pools/{name}', 'PATCH /v1/pools/{name}', 'DELETE /v1/pools/{name}', 'GET /v1/replicas', 'DELETE /v1/replicas/{id}', 'GET /v1/tasks', 'GET /v1/tasks/{id}', 'GET /v1/tasks/{id}/events', 'GET /v1/hosts', 'GET /healthz', 'GET /openapi.json']) {
    assert.ok(documented.includes(must), must);
  }
}));

test('read-only routes: images, templates, networks, hosts and VMs from the store, unknown names 404', withApi(async (f) => {
  await addImage(f.deps, 'default');
  const images = (await f.call({ method: 'GET', url: '/v1/images' })).json();
  assert.deepEqual(images.map((i: { name: string; hostId: string }) => [i.name, i.hostId]), [['default', 'local']]);
  const one = await f.call({ method: 'GET', url: '/v1/images/default' });
  assert.equal(one.statusCode, 200);
  assert.deepEqual(one.json().problems, ['no manifest']);
  const missing = await f.call({ method: 'GET', url: '/v1/images/nope' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, 'VMFORK_IMAGE_NOT_FOUND');
  const badName = await f.call({ method: 'GET', url: '/v1/images/Bad_Name' });
  assert.equal(badName.statusCode, 400);
  assert.deepEqual(badName.json().error.details.problems.map((p: { path: string; in: string }) => `${p.in}:${p.path}`), ['path:name']);
  assert.deepEqual((await f.call({ method: 'GET', url: '/v1/templates' })).json(), []);
  assert.equal((await f.call({ method: 'GET', url: '/v1/templates/web' })).json().error.code, 'VMFORK_TEMPLATE_NOT_FOUND');
  assert.equal((await f.call({ method: 'GET', url: '/v1/networks' })).statusCode, 200);
  assert.equal((await f.call({ method: 'GET', url: '/v1/networks/lab' })).statusCode, 404);
  const [host] = (await f.call({ method: 'GET', url: '/v1/hosts' })).json();
  assert.equal(host.id, 'local');
  assert.equal(host.datastores[0].name, 'default');
  assert.equal(host.datastores[0].path, `${f.dir}/datastores/default`);
  await addVm(f.deps, 'desk-01');
  await addVm(f.deps, 'other');
  const vms = (await f.call({ method: 'GET', url: '/v1/vms' })).json();
  assert.deepEqual(vms.map((v: { name: string; host: string }) => `${v.name}@${v.host}`), ['desk-01@local', 'other@local']);
  assert.equal((await f.call({ method: 'GET', url: '/v1/vms/desk-01' })).json().state, 'stopped');
  assert.equal((await f.call({ method: 'GET', url: '/v1/vms/ghost' })).json().error.code, 'VMFORK_VM_NOT_FOUND');
  const unknown = await f.call({ method: 'GET', url: '/v1/nothing-here' });
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json().error.code, 'VMFORK_ROUTE_NOT_FOUND');
}));

test('POST /v1/pools: a malformed spec is 400 naming the field, an unknown image 404; neither creates anything', withApi(async (f) => {
  const cases: [unknown, string, RegExp][] = [
    [{ ...SPEC, size: { max: 2, min: 3 } }, 'size.max', /must be ≥ size.min/],
    [{ ...SPEC, colour: 'blue' }, 'colour', /unknown field/],
    [{ ...SPEC, naming: { names: ['a', 'a', 'b'] } }, 'naming.names[1]', /duplicate name "a"/],
    [{ ...SPEC, disks: { disposable: '128M' } }, 'disks.userData', /persistent pool needs/],
    [{ ...SPEC, customize: { common: [{ path: '/etc/rc.local' }] } }, 'customize.common[0].path', /\/usr\/local\/lib\/vmfork\//],
  ];
  for (const [body, path, message] of cases) {
    const res = await f.call({ method: 'POST', url: '/v1/pools', payload: body as object });
    assert.equal(res.statusCode, 400, res.body);
    const { error } = res.json();
    assert.equal(error.code, 'VMFORK_INVALID_ARGUMENT');
    assert.ok(error.details.problems.some((p: { path: string; message: string }) => p.path === path && message.test(p.message)), res.body);
    assert.ok(error.message.includes(path), error.message);
  }
  const notJson = await f.call({ method: 'POST', url: '/v1/pools', payload: '{"name":', headers: { 'content-type': 'application/json' } });
  assert.equal(notJson.statusCode, 400);
  const noImage = await f.call({ method: 'POST', url: '/v1/pools', payload: SPEC });
  assert.equal(noImage.statusCode, 404);
  assert.equal(noImage.json().error.code, 'VMFORK_IMAGE_NOT_FOUND');
  assert.deepEqual(noImage.json().error.details.problems.map((p: { path: string }) => p.path), ['image']);
  assert.deepEqual(f.provision?.calls, [], 'the engine was never asked');
  assert.deepEqual(await listTaskViews(f.deps), [], 'no task was created');
}));

test('a pool\'s life over the API: create (JSON or YAML) → 202 + task; the task with per-child progress; its events; list, show, resize, remove, replicas, power', withApi(async (f) => {
  await addImage(f.deps, 'default');
  const created = await f.call({ method: 'POST', url: '/v1/pools', payload: SPEC });
  assert.equal(created.statusCode, 202, created.body);
  const { taskId, pool } = created.json();
  assert.equal(pool, 'desk');
  const done = await waitForTask(f.deps, taskId);
  assert.equal(done.state, 'succeeded');
  const task = (await f.call({ method: 'GET', url: `/v1/tasks/${taskId}` })).json();
  assert.deepEqual([task.state, task.step, task.percent, task.kind, task.target, task.lastError], ['succeeded', 'children', 100, 'pool-create', 'desk', null]);
  assert.deepEqual(Object.keys(task.children), ['desk-01', 'desk-02', 'desk-03']);
  const stream = await f.call({ method: 'GET', url: `/v1/tasks/${taskId}/events` });
  assert.equal(stream.statusCode, 200);
  const events = parseEventStream(stream.body);
  assert.deepEqual(events.map((e) => e.event), ['state', 'state', 'step', 'child', 'child', 'child', 'state']);
  assert.deepEqual(events.map((e) => e.id), ['1', '2', '3', '4', '5', '6', '7']);
  assert.equal(JSON.parse(events[6]?.data ?? '{}').data.state, 'succeeded');
  const resumed = await f.call({ method: 'GET', url: `/v1/tasks/${taskId}/events`, headers: { 'last-event-id': '5' } });
  assert.deepEqual(parseEventStream(resumed.body).map((e) => e.id), ['6', '7']);
  assert.equal((await f.call({ method: 'GET', url: '/v1/tasks/nope/events' })).statusCode, 404);

  const yaml = 'name: lab\nimage: default\nsize: { max: 2 }\ndisks: { disposable: 64M }\n';
  const fromYaml = await f.call({ method: 'POST', url: '/v1/pools', payload: yaml, headers: { 'content-type': 'application/yaml' } });
  assert.equal(fromYaml.statusCode, 202, fromYaml.body);
  await waitForTask(f.deps, fromYaml.json().taskId);

  assert.deepEqual((await f.call({ method: 'GET', url: '/v1/pools' })).json().map((p: { name: string }) => p.name), ['desk', 'lab']);
  const shown = (await f.call({ method: 'GET', url: '/v1/pools/desk' })).json();
  assert.deepEqual(shown.counts, { running: 3 });
  assert.equal(shown.spec.disks.swap, '32M');
  assert.deepEqual((await f.call({ method: 'GET', url: '/v1/tasks?target=desk' })).json().map((t: { id: string }) => t.id), [taskId]);
  assert.equal((await f.call({ method: 'GET', url: '/v1/tasks?state=bogus' })).statusCode, 400);

  await addVm(f.deps, 'desk-01');
  await addVm(f.deps, 'stray');
  assert.deepEqual((await f.call({ method: 'GET', url: '/v1/vms?pool=desk' })).json().map((v: { name: string }) => v.name), ['desk-01']);

  const badResize = await f.call({ method: 'PATCH', url: '/v1/pools/desk', payload: { max: 'ten' } });
  assert.equal(badResize.statusCode, 400);
  assert.deepEqual(badResize.json().error.details.problems.map((p: { path: string; in: string }) => `${p.in}:${p.path}`), ['body:max']);
  const resize = await f.call({ method: 'PATCH', url: '/v1/pools/desk', payload: { max: 5 } });
  assert.equal(resize.statusCode, 202);
  assert.equal((await waitForTask(f.deps, resize.json().taskId)).state, 'succeeded');

  const on = await f.call({ method: 'POST', url: '/v1/vms/desk-01/power-on' });
  assert.equal(on.statusCode, 202);
  assert.equal(on.json().vm, 'desk-01');
  assert.equal((await f.call({ method: 'POST', url: '/v1/vms/ghost/power-off' })).statusCode, 404);
  assert.equal((await f.call({ method: 'GET', url: '/v1/replicas' })).json()[0].pools.length, 2);
  const inUse = await f.call({ method: 'DELETE', url: '/v1/replicas/0123456789ab' });
  assert.equal(inUse.statusCode, 409, 'a replica a pool uses is protected');
  assert.equal(inUse.json().error.code, 'VMFORK_REPLICA_IN_USE');
  assert.equal((await f.call({ method: 'DELETE', url: '/v1/replicas/not-an-id' })).statusCode, 400);

  const removed = await f.call({ method: 'DELETE', url: '/v1/pools/desk' });
  assert.equal(removed.statusCode, 202);
  assert.equal((await waitForTask(f.deps, removed.json().taskId)).state, 'succeeded');
  const ended = await f.call({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` });
  assert.equal(ended.statusCode, 409);
  assert.equal(ended.json().error.code, 'VMFORK_TASK_STATE');
}));

test('cancelling a running task over the API: 202, then it ends cancelled', withApi(async (f) => {
  await addImage(f.deps, 'default');
  let release!: () => void;
  if (f.provision) f.provision.hold = new Promise<void>((resolve) => (release = resolve));
  const { taskId } = (await f.call({ method: 'POST', url: '/v1/pools', payload: SPEC })).json();
  const cancel = await f.call({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` });
  assert.equal(cancel.statusCode, 202, cancel.body);
  assert.ok(['cancelling', 'cancelled'].includes(cancel.json().state));
  release();
  assert.equal((await waitForTask(f.deps, taskId)).state, 'cancelled');
}));

test('a server without the provisioning engine still serves reads; pool routes answer 501', withApi(async (f) => {
  await addImage(f.deps, 'default');
  assert.equal((await f.call({ method: 'GET', url: '/v1/images' })).statusCode, 200);
  for (const [method, url] of [['GET', '/v1/pools'], ['GET', '/v1/replicas'], ['POST', '/v1/pools']] as const) {
    const res = await f.call({ method, url, ...(method === 'POST' ? { payload: SPEC } : {}) });
    assert.equal(res.statusCode, 501, `${method} ${url}`);
    assert.equal(res.json().error.code, 'VMFORK_NOT_SUPPORTED');
  }
}, { provision: false }));

test('the real provisioning engine behind the API: its answers match the documented views; a bad spec reaches nothing', withApi(async (f) => {
  await addImage(f.deps, 'default');
  assert.deepEqual((await f.call({ method: 'GET', url: '/v1/pools' })).json(), []);
  assert.deepEqual((await f.call({ method: 'GET', url: '/v1/replicas' })).json(), []);
  const missing = await f.call({ method: 'GET', url: '/v1/pools/nope' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, 'VMFORK_POOL_NOT_FOUND');
  const bad = await f.call({ method: 'POST', url: '/v1/pools', payload: { ...SPEC, size: { max: 1, spares: 2 } } });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.details.problems[0].path, 'size.spares');
  assert.deepEqual((await f.call({ method: 'GET', url: '/v1/pools' })).json(), []);
  assert.deepEqual(await listTaskViews(f.deps), []);
  assert.equal((await f.call({ method: 'PATCH', url: '/v1/pools/nope', payload: { max: 2 } })).statusCode, 404);
  assert.equal((await f.call({ method: 'POST', url: '/v1/vms/ghost/power-on' })).statusCode, 404);
}, { provision: 'engine' }));
