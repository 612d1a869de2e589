// The shape every `fhirguard <command>` takes, and the option parsing they share. Options
// are node's util.parseArgs options plus an optional environment variable, so each flag
// has an env equivalent (`--listen` / FHIRGUARD_LISTEN) documented once, here.

import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
  default?: string | boolean;
  /** Value shown in help, e.g. `<host:port>`. */
  arg?: string;
  help: string;
}

export interface Command {
  name: string;
  summary: string;
  /** Usage line after `fhirguard <name>`, e.g. `[options] <file>...`. */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Free text printed after the options in `--help`. */
  details?: string;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number | void>;
}

/** Options every long-running command accepts. */
export const LOG_LEVEL_OPTION: OptionSpec = {
  type: 'string',
  env: 'FHIRGUARD_LOG_LEVEL',
  default: 'info',
  arg: '<level>',
  help: 'pino log level: fatal, error, warn, info, debug, trace (JSON lines on stderr)',
};

export function helpText(cmd: Command): string {
  const lines = [`Usage: fhirguard ${cmd.name} ${cmd.usage}`.trimEnd(), '', cmd.summary, ''];
  const entries = Object.entries({ ...cmd.options, help: { type: 'boolean', help: 'show this help' } as OptionSpec });
  if (entries.length) lines.push('Options:');
  for (const [name, o] of entries) {
    const flag = `  --${name}${o.arg ? ` ${o.arg}` : ''}`;
    const extra = [o.env ? `env ${o.env}` : '', o.default !== undefined && o.default !== false ? `default ${String(o.default)}` : ''].filter(Boolean).join(', ');
    lines.push(`${flag.padEnd(34)} ${o.help}${extra ? ` (${extra})` : ''}`);
  }
  if (cmd.details) lines.push('', cmd.details);
  return lines.join('\n') + '\n';
}

/** Parses argv for one command: flags first, then env, then defaults. Throws on unknown flags. */
export function parseCommandArgs(
  cmd: Command,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[]; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(cmd.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const values = { ...parsed.values } as Record<string, string | boolean | string[] | undefined>;
  for (const [name, o] of Object.entries(cmd.options)) {
    if (values[name] !== undefined) continue;
    const fromEnv = o.env ? env[o.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') {
      values[name] = o.type === 'boolean' ? /^(1|true|yes|on)$/i.test(fromEnv) : fromEnv;
    } else if (o.default !== undefined) {
      values[name] = o.default;
    }
  }
  return { values, positionals: parsed.positionals, help: Boolean(parsed.values.help) };
}
