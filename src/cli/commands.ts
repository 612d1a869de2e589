// The table of fhirguard's commands, in the order `fhirguard --help` lists them. A new
// command is a file in this folder plus one line here.
//
// Each command's module is loaded only when that command runs (or help lists them all): the
// privileged agent must not even load the proxy's code, nor the proxy the agent's.

import type { Command } from './command';

export interface CommandEntry {
  name: string;
  load(): Command;
}

/* eslint-disable @typescript-eslint/no-require-imports */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'up', load: () => (require('./up') as typeof import('./up')).upCommand },
  { name: 'proxy', load: () => (require('./proxy') as typeof import('./proxy')).proxyCommand },
  { name: 'worker', load: () => (require('./worker') as typeof import('./worker')).workerCommand },
  { name: 'exec', load: () => (require('./exec') as typeof import('./exec')).execCommand },
  { name: 'agent', load: () => (require('./agent') as typeof import('./agent')).agentCommand },
  { name: 'reload', load: () => (require('./reload') as typeof import('./reload')).reloadCommand },
  { name: 'rollout', load: () => (require('./rollout') as typeof import('./rollout')).rolloutCommand },
  { name: 'profile', load: () => (require('./profile') as typeof import('./profile')).profileCommand },
  { name: 'record', load: () => (require('./record') as typeof import('./record')).recordCommand },
  { name: 'image', load: () => (require('./image') as typeof import('./image')).imageCommand },
  { name: 'keygen', load: () => (require('./keygen') as typeof import('./keygen')).keygenCommand },
  { name: 'sign', load: () => (require('./sign') as typeof import('./sign')).signCommand },
  { name: 'validate', load: () => (require('./validate') as typeof import('./validate')).validateCommand },
  { name: 'audit', load: () => (require('./audit') as typeof import('./audit')).auditCommand },
];
/* eslint-enable @typescript-eslint/no-require-imports */

/** The command named `name`, its module loaded now; undefined for an unknown name. */
export function loadCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name)?.load();
}
