// `fhirguard <command>`: looks the command up in the table below and runs it. Each command
// lives in its own file; this one only dispatches and prints help.

import { helpText, parseCommandArgs } from './command';
import { COMMANDS, loadCommand } from './commands';
import { fhirguardVersion } from '../version';

function mainHelp(): string {
  const commands = COMMANDS.map((c) => c.load());
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'Usage: fhirguard <command> [options]',
    '',
    'fhirguard: a FHIR R4 front door with in-kernel enforcement.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`),
    '',
    'Run `fhirguard <command> --help` for the options of one command,\n`fhirguard --version` for the version.',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`fhirguard ${fhirguardVersion()}\n`);
    return 0;
  }
  const cmd = loadCommand(name);
  if (!cmd) {
    process.stderr.write(`fhirguard: unknown command '${name}'\n\n${mainHelp()}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseCommandArgs(cmd, rest);
  } catch (err) {
    process.stderr.write(`fhirguard ${cmd.name}: ${(err as Error).message}\n\n${helpText(cmd)}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(helpText(cmd));
    return 0;
  }
  const code = await cmd.run(parsed.values, parsed.positionals);
  return typeof code === 'number' ? code : 0;
}
