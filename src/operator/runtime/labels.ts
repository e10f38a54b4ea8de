import { createHash } from 'node:crypto';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const MAX_LABEL_VALUE = 63;

const hash8 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

/**
 * A label value for any name (object names may be 253 characters, label values 63): the name itself
 * when it fits, else its head and a hash of the whole. Everyone who writes or selects by a Tidemark
 * label goes through this, so writers and selectors agree.
 */
export function labelValue(name: string): string {
  if (name.length <= MAX_LABEL_VALUE && LABEL_VALUE.test(name)) return name;
  const tail = `-${hash8(name)}`;
  const head = name
    .replace(/[^-A-Za-z0-9_.]/g, '-')
    .slice(0, MAX_LABEL_VALUE - tail.length)
    .replace(/[^A-Za-z0-9]+$/, '');
  return `${head}${tail}`.replace(/^[^A-Za-z0-9]+/, '');
}
