import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { repoRoot } from '../harness/tools.ts';

export type Manifest = k8s.KubernetesObject & { spec?: Record<string, unknown>; [key: string]: unknown };

export const examplesDir = join(repoRoot, 'examples');

export function exampleFiles(): string[] {
  return readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));
}

export function loadExample(file: string): Manifest {
  return parse(readFileSync(join(examplesDir, file), 'utf8')) as Manifest;
}
