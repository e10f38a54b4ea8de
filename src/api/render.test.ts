import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from '../../test/harness/tools.ts';
import { renderGeneratedFiles } from './render.ts';

test('crds/ and docs/api.md match src/api (run `npm run generate` after changing a schema)', () => {
  for (const [path, content] of renderGeneratedFiles()) {
    let committed = '';
    try {
      committed = readFileSync(join(repoRoot, path), 'utf8');
    } catch {
      assert.fail(`${path} is missing`);
    }
    assert.ok(committed === content, `${path} is out of date: run \`npm run generate\``);
  }
});

test('every CRD has a status subresource, printer columns and a structural schema', () => {
  for (const [path, content] of renderGeneratedFiles()) {
    if (!path.endsWith('.tidemark.dev.yaml')) continue;
    const crd = parse(content);
    const version = crd.spec.versions[0];
    assert.deepEqual(version.subresources, { status: {} }, path);
    assert.ok(version.additionalPrinterColumns.length >= 4, `${path} has useful printer columns`);
    assertStructural(version.schema.openAPIV3Schema, path);
  }
});

/** Structural schemas give every node a type (or preserve unknown fields), and arrays their items. */
// biome-ignore lint/suspicious/noExplicitAny: walks parsed YAML of any shape
function assertStructural(schema: Record<string, any>, path: string): void {
  assert.ok(schema.type || schema['x-kubernetes-preserve-unknown-fields'], `${path}: no type`);
  if (schema.type === 'array') {
    assert.ok(schema.items, `${path}: array without items`);
    assertStructural(schema.items, `${path}[]`);
  }
  for (const [name, child] of Object.entries(schema.properties ?? {}))
    assertStructural(child as Record<string, unknown>, `${path}.${name}`);
}
