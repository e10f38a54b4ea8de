/**
 * A small builder for structural OpenAPI v3 schemas that also carries the TypeScript type it describes.
 * It is the one source of truth for each kind: `crds/*.yaml` are generated from these schemas and the
 * types are inferred from them (`TypeOf<typeof schema>`), so the two cannot drift.
 */

/** A CEL rule evaluated by the API server (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  /** JSON path, relative to the schema, of the field the error names; e.g. `.cron`. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  /** Rules on transitions (oldSelf) need this so they do not run on create. */
  optionalOldSelf?: boolean;
}

export interface JsonSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: readonly (string | number)[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
}

/** A schema together with the (phantom) TypeScript type of the values it admits. */
export interface Schema<T> {
  readonly json: JsonSchema;
  readonly optional: boolean;
  /** Never set; only carries T for inference. */
  readonly __type?: T;
}

export type TypeOf<S> = S extends Schema<infer T> ? T : never;

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<P extends Shape> = { [K in keyof P]: P[K]['optional'] extends true ? K : never }[keyof P];
type RequiredKeys<P extends Shape> = Exclude<keyof P, OptionalKeys<P>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<P extends Shape> = Simplify<
  { [K in RequiredKeys<P>]: TypeOf<P[K]> } & { [K in OptionalKeys<P>]?: TypeOf<P[K]> }
>;

type Options = Omit<JsonSchema, 'type' | 'properties' | 'required' | 'items' | 'x-kubernetes-validations'> & {
  rules?: CelRule[];
};

function make<T>(json: JsonSchema, options: Options = {}): Schema<T> {
  const { rules, ...rest } = options;
  const out: JsonSchema = { ...json, ...rest };
  if (rules?.length) out['x-kubernetes-validations'] = rules;
  return { json: out, optional: false };
}

export const string = <T extends string = string>(options?: Options) => make<T>({ type: 'string' }, options);
export const integer = (options?: Options) => make<number>({ type: 'integer' }, options);
export const boolean = (options?: Options) => make<boolean>({ type: 'boolean' }, options);
export const enumOf = <const V extends readonly string[]>(values: V, options?: Options) =>
  make<V[number]>({ type: 'string', enum: values }, options);
export const array = <T>(items: Schema<T>, options?: Options) =>
  make<T[]>({ type: 'array', items: items.json }, options);
export const stringMap = (options?: Options) =>
  make<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' } }, options);
/** An object the API server keeps as it is (e.g. a pod's resources), typed by the caller. */
export const opaque = <T>(options?: Options) =>
  make<T>({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, options);
/** A list of such objects (e.g. a pod's tolerations). */
export const opaqueList = <T>(options?: Options) =>
  make<T[]>({ type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } }, options);

export function object<P extends Shape>(properties: P, options?: Options): Schema<ObjectOf<P>> {
  const json: JsonSchema = { type: 'object', properties: {} };
  const required: string[] = [];
  for (const [name, schema] of Object.entries(properties)) {
    (json.properties as Record<string, JsonSchema>)[name] = schema.json;
    if (!schema.optional) required.push(name);
  }
  if (required.length) json.required = required;
  return make<ObjectOf<P>>(json, options);
}

/** Marks a property optional; a default makes it optional on input but always present once stored. */
export function optional<T>(schema: Schema<T>): Schema<T> & { optional: true } {
  return { ...schema, optional: true };
}
