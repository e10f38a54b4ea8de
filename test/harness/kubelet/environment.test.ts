import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fieldValue, rewritePaths } from './environment.ts';

const mappings = [
  { containerPath: '/data', localPath: '/tmp/k/volumes/ns/claim' },
  { containerPath: '/data/cache', localPath: '/tmp/k/pods/p/volumes/cache' },
  { containerPath: '/dev/termination-log', localPath: '/tmp/k/pods/p/main.termination-log' },
];

test('mount paths are rewritten as whole path prefixes, the longest first', () => {
  assert.equal(rewritePaths('/data', mappings), '/tmp/k/volumes/ns/claim');
  assert.equal(rewritePaths('/data/x.sql', mappings), '/tmp/k/volumes/ns/claim/x.sql');
  assert.equal(rewritePaths('/data/cache/1', mappings), '/tmp/k/pods/p/volumes/cache/1');
  assert.equal(rewritePaths('--target=/data/out', mappings), '--target=/tmp/k/volumes/ns/claim/out');
  assert.equal(rewritePaths('cp /data/a /data/b', mappings), 'cp /tmp/k/volumes/ns/claim/a /tmp/k/volumes/ns/claim/b');
});

test('file URLs of mount paths are rewritten too', () => {
  assert.equal(rewritePaths('file:///data', mappings), 'file:///tmp/k/volumes/ns/claim');
  assert.equal(rewritePaths('file:///data/x', mappings), 'file:///tmp/k/volumes/ns/claim/x');
});

test('paths that only share a prefix string are left alone', () => {
  assert.equal(rewritePaths('/database', mappings), '/database');
  assert.equal(rewritePaths('/srv/data', mappings), '/srv/data');
});

test('a replaced path is not rewritten again', () => {
  const chained = [
    { containerPath: '/a', localPath: '/b' },
    { containerPath: '/b', localPath: '/c' },
  ];
  assert.equal(rewritePaths('/a/x', chained), '/b/x');
});

test('downward API fields resolve from the pod', () => {
  const pod = {
    metadata: { name: 'p', namespace: 'ns', labels: { app: 'x' } },
    spec: { containers: [], nodeName: 'n' },
  };
  assert.equal(fieldValue(pod, 'metadata.name'), 'p');
  assert.equal(fieldValue(pod, 'metadata.namespace'), 'ns');
  assert.equal(fieldValue(pod, "metadata.labels['app']"), 'x');
  assert.equal(fieldValue(pod, 'spec.nodeName'), 'n');
});
