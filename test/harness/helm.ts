import { join } from 'node:path';
import { runCommand } from './process.ts';
import { goTool } from './tools.ts';

/** Runs the pinned helm and returns its stdout; its cache and config live under `home`, not the user's. */
export function helm(args: string[], home: string): Promise<string> {
  return runCommand(goTool('helm'), args, {
    logFile: join(home, 'helm.log'),
    env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home },
  });
}
