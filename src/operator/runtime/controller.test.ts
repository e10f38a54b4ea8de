import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import { Controller, specSignature } from './controller.ts';

/** The informer surface a controller subscribes to: add, update and delete callbacks. */
class Events<T extends k8s.KubernetesObject> extends EventEmitter {
  emitAs(verb: 'add' | 'update' | 'delete', object: T) {
    this.emit(verb, object);
  }
}

const policy = (generation: number, status: object = {}, deletionTimestamp?: string) =>
  ({
    metadata: {
      namespace: 'tenants',
      name: 'nightly',
      generation,
      ...(deletionTimestamp ? { deletionTimestamp } : {}),
    },
    status,
  }) as k8s.KubernetesObject;

async function drained(controller: Controller): Promise<string[]> {
  const keys: string[] = [];
  while (controller.queue.length > 0) {
    const key = (await controller.queue.get()) as string;
    keys.push(key);
    controller.queue.done(key);
  }
  return keys;
}

test('with specSignature, a status-only update queues nothing; a spec change or deletion does', async () => {
  const controller = new Controller('test', async () => undefined);
  const informer = new Events<k8s.KubernetesObject>();
  controller.watch(informer as unknown as k8s.Informer<k8s.KubernetesObject>, undefined, specSignature);

  informer.emitAs('add', policy(1));
  assert.deepEqual(await drained(controller), ['tenants/nightly']);
  informer.emitAs('update', policy(1, { nextRunTime: '2026-11-24T02:00:00Z' }));
  assert.deepEqual(await drained(controller), [], 'our own status write must not queue the policy again');
  informer.emitAs('update', policy(2));
  assert.deepEqual(await drained(controller), ['tenants/nightly']);
  informer.emitAs('update', policy(2, {}, '2026-11-23T12:00:00Z'));
  assert.deepEqual(await drained(controller), ['tenants/nightly']);
  informer.emitAs('delete', policy(2));
  assert.deepEqual(await drained(controller), ['tenants/nightly']);
});

test('without a signature every update queues the mapped keys', async () => {
  const controller = new Controller('test', async () => undefined);
  const informer = new Events<k8s.KubernetesObject>();
  controller.watch(informer as unknown as k8s.Informer<k8s.KubernetesObject>, (o) => [`owner-of/${o.metadata?.name}`]);
  informer.emitAs('update', policy(1));
  assert.deepEqual(await drained(controller), ['owner-of/nightly']);
  informer.emitAs('update', policy(1));
  assert.deepEqual(await drained(controller), ['owner-of/nightly'], 'even an update that changed nothing');
});

// SIGTERM with thousands of keys queued (2,000 policies, nine controllers): the operator must exit within
// its grace period, leaving the queue to the next process, which lists everything again at start anyway.
test('stopping finishes the reconciles in flight and leaves the keys still queued', async () => {
  const started: string[] = [];
  let release: () => void = () => undefined;
  const inFlight = new Promise<void>((resolve) => {
    release = resolve;
  });
  const controller = new Controller(
    'backuppolicy',
    async (key) => {
      started.push(key);
      await inFlight;
      return undefined;
    },
    {},
    2,
  );
  for (let i = 0; i < 100; i++) controller.queue.add(`acme/policy-${i}`);
  const stop = new AbortController();
  const running = controller.run(stop.signal);
  while (started.length < 2) await new Promise((resolve) => setImmediate(resolve));
  stop.abort();
  release();
  await running;
  assert.deepEqual(started, ['acme/policy-0', 'acme/policy-1'], 'only the two in flight ran');
});
