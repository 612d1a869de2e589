// What a `fhirguard <command>` accepts, read from the real command table: deploy files may
// only use flags and FHIRGUARD_* variables a command declares, so a renamed option breaks a
// test here instead of a deployment.

import { loadCommand } from '../../src/cli/commands';

export interface CommandSurface {
  flags: Set<string>;
  env: Set<string>;
}

export function commandSurface(name: string): CommandSurface | undefined {
  const cmd = loadCommand(name);
  if (!cmd) return undefined;
  const flags = new Set(['help', ...Object.keys(cmd.options)]);
  const env = new Set(Object.values(cmd.options).flatMap((o) => (o.env ? [o.env] : [])));
  return { flags, env };
}

/** Problems with one container's command line and environment, [] when all are declared. */
export function undeclaredOptions(command: string[], environment: Record<string, string>): string[] {
  const [name, ...args] = command;
  const surface = commandSurface(name);
  if (!surface) return [`fhirguard has no \`${name}\` command`];
  const problems: string[] = [];
  for (const a of args) {
    const m = /^--([a-z0-9-]+)(=.*)?$/.exec(a);
    if (m && !surface.flags.has(m[1])) problems.push(`fhirguard ${name} has no --${m[1]}`);
  }
  for (const k of Object.keys(environment)) {
    if (k.startsWith('FHIRGUARD_') && !surface.env.has(k)) problems.push(`fhirguard ${name} reads no ${k}`);
  }
  return problems;
}
