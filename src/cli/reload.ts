// `fhirguard reload`: has a running front door read its policy file again, and prints what is
// in force afterwards. A new policy is checked first: one with problems is refused (its
// file:line:col messages printed here) and the old one stays in force. Under `fhirguard up`
// the agent is asked (its control socket): it checks the tiers and their signed statements
// too, and hands the policy to the front door it runs.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { defaultControlSocket } from '../agent/control';
import { askReload, type ReloadAnswer, type ReloadTarget } from '../agent-api/reload';
import { DEFAULT_STATE_DIR } from '../enforce/layout';
import { parseHostPort } from '../proxy/address';
import type { Command } from './command';

/** The proxy's own admin listener when --admin is given; else `up`'s agent when its control socket is there; else the default admin address. */
function targetOf(values: Record<string, unknown>): { target: ReloadTarget; path: string; what: string } {
  if (typeof values.admin === 'string') return { target: parseHostPort(values.admin, '--admin'), path: '/reload', what: `the front door at ${values.admin}` };
  const control = path.resolve(typeof values.control === 'string' ? values.control : defaultControlSocket(String(values['state-dir'])));
  if (typeof values.control === 'string' || existsSync(control)) return { target: { socketPath: control }, path: '/policy/reload', what: `the agent at ${control}` };
  const admin = process.env.FHIRGUARD_ADMIN ?? '127.0.0.1:9464';
  return { target: parseHostPort(admin, '--admin'), path: '/reload', what: `the front door at ${admin}` };
}

export const reloadCommand: Command = {
  name: 'reload',
  summary: 'have a running front door read its policy file again (checked first; the old one stays on any problem)',
  usage: '[--admin <host:port> | --control <socket>]',
  options: {
    admin: { type: 'string', arg: '<host:port>', help: "a `fhirguard proxy`'s admin listener (default: up's agent when it runs, else $FHIRGUARD_ADMIN or 127.0.0.1:9464)" },
    'state-dir': { type: 'string', env: 'FHIRGUARD_STATE_DIR', arg: '<dir>', default: DEFAULT_STATE_DIR, help: "`up`'s state directory (the agent's control socket is there)" },
    control: { type: 'string', env: 'FHIRGUARD_AGENT_CONTROL', arg: '<path>', help: "the agent's control socket (default <state-dir>/control/agent.sock)" },
    json: { type: 'boolean', help: 'print the answer as JSON' },
  },
  details: [
    'Same as SIGHUP to `fhirguard proxy` or `fhirguard up`, but with an answer. Exit 0 when the',
    'policy in force is the file (applied, or unchanged), 1 when the new policy was refused (why is',
    'printed; the old one stays), 2 when nothing could be asked.',
  ].join('\n'),
  async run(values) {
    const err = (m: string): void => void process.stderr.write(`fhirguard reload: ${m}\n`);
    let answer: ReloadAnswer;
    let what = '';
    try {
      const t = targetOf(values);
      what = t.what;
      answer = await askReload(t.target, t.path);
    } catch (e) {
      err(`cannot ask ${what || 'the front door'}: ${(e as Error).message}`);
      return 2;
    }
    if (values.json) process.stdout.write(JSON.stringify(answer) + '\n');
    if (answer.result === 'refused') {
      err(`${answer.error}\nstill in force: ${answer.policy.digest} (${answer.policy.file})`);
      return 1;
    }
    if (!values.json) process.stdout.write(`${answer.result === 'applied' ? 'in force' : 'unchanged, in force'}: ${answer.policy.digest} (${answer.policy.file})\n`);
    return 0;
  },
};
