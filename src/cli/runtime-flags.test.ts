import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../test/harness/tools.ts';
import { NODE_COMMAND, NODE_RUNTIME_FLAGS, OPERATOR_NODE_OPTIONS } from './runtime-flags.ts';

test("the image's ENTRYPOINT runs node with the runtime flags", () => {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  assert.ok(entrypoint, 'the Dockerfile has an exec-form ENTRYPOINT');
  assert.deepEqual(JSON.parse(entrypoint), ['node', ...NODE_RUNTIME_FLAGS, '/app/dist/cli/main.js']);
});

for (const bin of ['tidemark.js', 'kubectl-tidemark'])
  test(`bin/${bin} runs node with the runtime flags`, () => {
    const shebang = readFileSync(join(repoRoot, 'bin', bin), 'utf8').split('\n')[0];
    assert.equal(shebang, `#!/usr/bin/env -S ${NODE_COMMAND}`);
  });

for (const manifest of ['deploy/deployment.yaml', 'charts/tidemark/templates/deployment.yaml'])
  test(`${manifest} gives the operator's node its heap share (NODE_OPTIONS)`, () => {
    const text = readFileSync(join(repoRoot, manifest), 'utf8');
    const value = /- name: NODE_OPTIONS\n\s+value: (.*)\n/.exec(text)?.[1];
    assert.equal(value, OPERATOR_NODE_OPTIONS);
  });
