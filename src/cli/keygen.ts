// `fhirguard keygen`: a new Ed25519 key pair for signing tier statements. The private key
// (<name>.key, mode 0600) stays with whoever signs; the public key (<name>.pub) goes to the
// agent's --trusted-keys.

import path from 'node:path';
import { writeKeyPair } from '../trust/keys';
import type { Command } from './command';

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'make an Ed25519 key pair for signing tier statements (fhirguard sign)',
  usage: '[--out <dir>] [--name <name>]',
  options: {
    out: { type: 'string', env: 'FHIRGUARD_KEY_DIR', arg: '<dir>', default: '.', help: 'directory to write <name>.key and <name>.pub to' },
    name: { type: 'string', arg: '<name>', default: 'fhirguard', help: 'file name of the pair, without extension' },
  },
  details: [
    'Never overwrites: an existing key is kept (exit 1). Prints the key id (sha256 of the public key,',
    'the keyid of the DSSE signatures made with it). Give the .pub file (or its directory) to',
    '`fhirguard agent --trusted-keys`; keep the .key file where only the signer can read it.',
  ].join('\n'),
  async run(values) {
    const name = String(values.name);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      process.stderr.write(`fhirguard keygen: --name ${JSON.stringify(name)}: letters, digits, '.', '_' and '-' only\n`);
      return 2;
    }
    try {
      const k = writeKeyPair(path.resolve(String(values.out)), name);
      process.stdout.write(`private key ${k.keyFile}\npublic key  ${k.publicFile}\nkey id      ${k.keyid}\n`);
      return 0;
    } catch (err) {
      // An existing key (kept), or a directory that cannot be written.
      process.stderr.write(`fhirguard keygen: ${(err as Error).message}\n`);
      return 1;
    }
  },
};
