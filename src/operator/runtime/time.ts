/**
 * Kubernetes timestamps as the operator sees them. @kubernetes/client-node's typed lists turn them into
 * `Date`s while watch events and custom objects carry RFC 3339 strings; the informers store the JSON
 * form (see `asWatched`), and every comparison goes through `instant`, never a string sort.
 */
export function instant(value: Date | string | undefined | null): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Newest first by `time`; items without a time go last. */
export function newestFirst<T>(items: T[], time: (item: T) => Date | string | undefined | null): T[] {
  return [...items].sort((a, b) => (instant(time(b)) ?? -Infinity) - (instant(time(a)) ?? -Infinity));
}

/**
 * A typed list as a watch event would have delivered its items: `Date`s back to RFC 3339 strings. The
 * informer's initial list and its watch events then fill the cache with objects of one shape.
 */
export function asWatched<T>(list: T): T {
  return JSON.parse(JSON.stringify(list)) as T;
}
