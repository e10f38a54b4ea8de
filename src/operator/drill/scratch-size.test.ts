import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { Source } from '../../api/backuppolicy.ts';
import { quantityBytes, scratchSize } from './scratch-size.ts';

const claim = (name: string, storage: string, labels: Record<string, string> = {}): k8s.V1PersistentVolumeClaim => ({
  metadata: { name, labels },
  spec: { resources: { requests: { storage } } },
});

describe('scratchSize', () => {
  it('is the one source PVC request as written, the sum in bytes for several', () => {
    const byName = { name: 'docs', volume: { claimName: 'docs' } } as Source;
    assert.equal(scratchSize(byName, [claim('docs', '5Gi'), claim('other', '1Ti')]), '5Gi');
    const bySelector = { name: 'docs', volume: { selector: { matchLabels: { app: 'docs' } } } } as Source;
    const claims = [
      claim('a', '1Gi', { app: 'docs' }),
      claim('b', '500M', { app: 'docs' }),
      claim('c', '1Ti'),
      claim('scratch', '9Ti', { app: 'docs', 'app.kubernetes.io/managed-by': 'tidemark' }),
    ];
    assert.equal(scratchSize(bySelector, claims), String(2 ** 30 + 500e6));
  });

  it('is undefined without a PVC or with a request it cannot read', () => {
    const byName = { name: 'docs', volume: { claimName: 'docs' } } as Source;
    assert.equal(scratchSize(byName, []), undefined);
    const bySelector = { name: 'docs', volume: { selector: { matchLabels: { app: 'docs' } } } } as Source;
    assert.equal(
      scratchSize(bySelector, [claim('a', '1Gi', { app: 'docs' }), claim('b', '1e3', { app: 'docs' })]),
      undefined,
    );
  });

  it('reads binary and decimal suffixes', () => {
    assert.equal(quantityBytes('1.5Ki'), 1536);
    assert.equal(quantityBytes('2G'), 2e9);
    assert.equal(quantityBytes('100'), 100);
    assert.equal(quantityBytes('lots'), undefined);
  });
});
