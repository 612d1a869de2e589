// The table of fhirguard's commands, in the order `fhirguard --help` lists them. A new
// command is a file in this folder plus one line here.

import type { Command } from './command';
import { validateCommand } from './validate';
import { workerCommand } from './worker';
import { execCommand } from './exec';
import { agentCommand } from './agent';
import { profileCommand } from './profile';
import { proxyCommand } from './proxy';
import { upCommand } from './up';
import { recordCommand } from './record';
import { imageCommand } from './image';
import { rolloutCommand } from './rollout';
import { keygenCommand } from './keygen';
import { signCommand } from './sign';

export const COMMANDS: readonly Command[] = [upCommand, proxyCommand, workerCommand, execCommand, agentCommand, rolloutCommand, profileCommand, recordCommand, imageCommand, keygenCommand, signCommand, validateCommand];
