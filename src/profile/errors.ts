import { readFileSync } from 'node:fs';

// One error type for everything `fhirguard profile` reads: the message always starts with
// the file, then the place in it (a JSON path like `syscalls[3].args[0].op`), then what is
// wrong, so an operator can go straight to the mistake.

export class ProfileError extends Error {
  constructor(
    readonly file: string,
    readonly where: string | undefined,
    readonly problem: string,
  ) {
    super(`${file}: ${where ? `${where}: ` : ''}${problem}`);
    this.name = 'ProfileError';
  }
}

/** A file's text, or a ProfileError saying why it cannot be read (`hint` follows "no such file"). */
export function readText(file: string, hint = ''): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ProfileError(file, undefined, code === 'ENOENT' ? `no such file${hint}` : (err as Error).message);
  }
}
