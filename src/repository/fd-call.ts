/**
 * A callback-style `node:fs` call as a promise. Used where a busy thread makes many small calls: the FileHandle of
 * `node:fs/promises` costs about twice as much per open, stat, read and close.
 */
export function fdCall<T = void>(
  call: (done: (error: NodeJS.ErrnoException | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value as T))));
}
