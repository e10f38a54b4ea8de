// A restore as its own process, to be killed by the kill test: reads a dump file and restores it into a
// MariaDB database. SIGTERM/SIGINT abort the restore through its AbortSignal, as the agent does.
// Usage: node --import tsx mysql-restore-process.ts <options.json>; MYSQL_PWD holds the password.
import { createReadStream, readFileSync } from 'node:fs';
import { MySQLSource } from '../../src/sources/mysql/mysql.ts';

const options = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as {
  host: string;
  port: number;
  user: string;
  database: string;
  mode: 'new' | 'replace';
  dumpFile: string;
  postRestoreSQL?: string;
};
const controller = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => controller.abort(signal));
const source = new MySQLSource({ ...options, password: process.env.MYSQL_PWD ?? '', databases: [options.database] });
process.stdout.write('started\n');
source
  .restore(createReadStream(options.dumpFile), {
    database: options.database,
    mode: options.mode,
    signal: controller.signal,
    ...(options.postRestoreSQL ? { postRestoreSQL: options.postRestoreSQL } : {}),
  })
  .then(
    () => process.exit(0),
    (error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    },
  );
