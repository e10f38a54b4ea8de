import { backupSpec, backupStatus } from './backup.ts';
import { backupExportSpec, backupExportStatus } from './backupexport.ts';
import { backupPolicySpec, backupPolicyStatus } from './backuppolicy.ts';
import { backupReportSpec, backupReportStatus } from './backupreport.ts';
import { backupRepositorySpec, backupRepositoryStatus } from './backuprepository.ts';
import { API_GROUP, API_VERSION } from './common.ts';
import { restoreRequestSpec, restoreRequestStatus } from './restorerequest.ts';
import type { JsonSchema, Schema, TypeOf } from './schema.ts';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: Schema<unknown>;
  status: Schema<unknown>;
  printerColumns: PrinterColumn[];
}

const condition = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;
const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const kinds = {
  BackupRepository: {
    kind: 'BackupRepository',
    plural: 'backuprepositories',
    singular: 'backuprepository',
    shortNames: ['brepo'],
    description: 'Where backups live: an S3 bucket, an Azure Blob container or a directory, always encrypted.',
    spec: backupRepositorySpec,
    status: backupRepositoryStatus,
    printerColumns: [
      { name: 'Provider', type: 'string', jsonPath: '.spec.provider' },
      { name: 'Region', type: 'string', jsonPath: '.spec.region' },
      { name: 'Ready', type: 'string', jsonPath: condition('Ready') },
      { name: 'Size', type: 'string', jsonPath: '.status.size' },
      { name: 'Last Check', type: 'date', jsonPath: '.status.lastCheckTime' },
      age,
    ],
  },
  BackupPolicy: {
    kind: 'BackupPolicy',
    plural: 'backuppolicies',
    singular: 'backuppolicy',
    shortNames: ['bpol'],
    description: 'What to back up, when, where to, how long to keep it, and the recovery objectives.',
    spec: backupPolicySpec,
    status: backupPolicyStatus,
    printerColumns: [
      { name: 'Ready', type: 'string', jsonPath: condition('Ready') },
      { name: 'RPO Met', type: 'string', jsonPath: condition('RPOMet') },
      { name: 'RPO Target', type: 'string', jsonPath: '.spec.objectives.rpo' },
      { name: 'Last Success', type: 'date', jsonPath: '.status.lastSuccessTime' },
      { name: 'Replicas', type: 'string', jsonPath: condition('ReplicasHealthy') },
      { name: 'Next Run', type: 'string', jsonPath: '.status.nextRunTime' },
      { name: 'Suspended', type: 'boolean', jsonPath: '.spec.schedule.suspend', priority: 1 },
      { name: 'Repository', type: 'string', jsonPath: '.spec.repository', priority: 1 },
      age,
    ],
  },
  Backup: {
    kind: 'Backup',
    plural: 'backups',
    singular: 'backup',
    shortNames: ['bk'],
    description: "One backup run of one source, created by a policy's schedule or by a user.",
    spec: backupSpec,
    status: backupStatus,
    printerColumns: [
      { name: 'Policy', type: 'string', jsonPath: '.spec.policy' },
      { name: 'Source', type: 'string', jsonPath: '.spec.source' },
      { name: 'Type', type: 'string', jsonPath: '.spec.type' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Size', type: 'string', jsonPath: '.status.size' },
      { name: 'Started', type: 'date', jsonPath: '.status.startTime' },
      { name: 'Snapshot', type: 'string', jsonPath: '.status.snapshotId', priority: 1 },
      { name: 'Error', type: 'string', jsonPath: '.status.error', priority: 1 },
      age,
    ],
  },
  RestoreRequest: {
    kind: 'RestoreRequest',
    plural: 'restorerequests',
    singular: 'restorerequest',
    shortNames: ['restore'],
    description: 'A request to restore a backup into its original source (explicitly) or another target.',
    spec: restoreRequestSpec,
    status: restoreRequestStatus,
    printerColumns: [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Backup', type: 'string', jsonPath: '.status.backupName' },
      { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
      { name: 'Approvals', type: 'string', jsonPath: '.status.approvalSummary' },
      { name: 'RTO', type: 'string', jsonPath: '.status.achievedRTO' },
      { name: 'Requested By', type: 'string', jsonPath: '.spec.requestedBy', priority: 1 },
      age,
    ],
  },
  BackupReport: {
    kind: 'BackupReport',
    plural: 'backupreports',
    singular: 'backupreport',
    shortNames: ['breport'],
    description:
      "A policy's backup activity of one day: runs, failures, bytes, record counts per object and what could not be backed up. Written by the operator.",
    spec: backupReportSpec,
    status: backupReportStatus,
    printerColumns: [
      { name: 'Policy', type: 'string', jsonPath: '.spec.policy' },
      { name: 'Date', type: 'string', jsonPath: '.spec.date' },
      { name: 'Runs', type: 'integer', jsonPath: '.status.runs' },
      { name: 'Succeeded', type: 'integer', jsonPath: '.status.succeeded' },
      { name: 'Failed', type: 'integer', jsonPath: '.status.failed' },
      { name: 'Uploaded', type: 'integer', jsonPath: '.status.uploadedBytes', priority: 1 },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Time Zone', type: 'string', jsonPath: '.spec.timeZone', priority: 1 },
      age,
    ],
  },
  BackupExport: {
    kind: 'BackupExport',
    plural: 'backupexports',
    singular: 'backupexport',
    shortNames: ['bexport'],
    description:
      "A backup as a ZIP in the repository's object store (a CSV per table, or the files), with a download link that expires.",
    spec: backupExportSpec,
    status: backupExportStatus,
    printerColumns: [
      { name: 'Backup', type: 'string', jsonPath: '.spec.backup' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Size', type: 'string', jsonPath: '.status.size' },
      { name: 'Expires', type: 'date', jsonPath: '.status.expiryTime' },
      { name: 'Secret', type: 'string', jsonPath: '.status.secretName' },
      { name: 'Location', type: 'string', jsonPath: '.status.location', priority: 1 },
      age,
    ],
  },
} satisfies Record<string, KindDefinition>;

export type KindName = keyof typeof kinds;

/** A custom resource as the API server returns it. */
export interface Resource<Spec, Status> {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  };
  spec: Spec;
  status?: Status;
}

type ResourceOf<K extends KindName> = Resource<TypeOf<(typeof kinds)[K]['spec']>, TypeOf<(typeof kinds)[K]['status']>>;
export type BackupRepository = ResourceOf<'BackupRepository'>;
export type BackupPolicy = ResourceOf<'BackupPolicy'>;
export type Backup = ResourceOf<'Backup'>;
export type RestoreRequest = ResourceOf<'RestoreRequest'>;
export type BackupReport = ResourceOf<'BackupReport'>;
export type BackupExport = ResourceOf<'BackupExport'>;

/** The CustomResourceDefinition of a kind, as committed under crds/. */
export function customResourceDefinition(definition: KindDefinition) {
  const schema: JsonSchema = {
    type: 'object',
    description: definition.description,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: definition.spec.json,
      status: definition.status.json,
    },
    required: ['spec'],
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${definition.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'tidemark' },
    },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: definition.kind,
        listKind: `${definition.kind}List`,
        plural: definition.plural,
        singular: definition.singular,
        shortNames: definition.shortNames,
        categories: ['tidemark'],
      },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: definition.printerColumns,
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}
