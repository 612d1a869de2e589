// The table of fhirguard's commands, in the order `fhirguard --help` lists them. A new
// command is a file in this folder plus one line here.

import type { Command } from './command';
import { validateCommand } from './validate';
import { workerCommand } from './worker';
import { execCommand } from './exec';
import { profileCommand } from './profile';

export const COMMANDS: readonly Command[] = [workerCommand, execCommand, profileCommand, validateCommand];
