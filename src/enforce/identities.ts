// Who each unprivileged process of fhirguard runs as. Three identities that share nothing:
// the proxy's (it reaches workers through their sockets and the agent through its API
// socket, and can open nothing in the data directory), the read tiers' workers' (they may
// read the database and not write it, at the file-permission level too) and the writing
// tiers' workers' (they own the database). Named system users by default, made when missing
// by a root agent or `up`; numeric uid:gid pairs for hosts that manage users centrally.

import { execFileSync } from 'node:child_process';
import type { OptionSpec } from '../cli/command';
import { parseIdentity, type WorkerIdentity } from './layout';

export type IdentityRole = 'proxy' | 'reader' | 'writer';

export type Identities = Readonly<Record<IdentityRole, WorkerIdentity>>;

export const IDENTITY_ROLES: readonly IdentityRole[] = ['proxy', 'reader', 'writer'];

/** The system user (and its group of the same name) each role runs as by default. */
export const DEFAULT_USER_NAMES: Readonly<Record<IdentityRole, string>> = {
  proxy: 'fhirguard-proxy',
  reader: 'fhirguard-reader',
  writer: 'fhirguard-writer',
};

const ROLE_HELP: Record<IdentityRole, string> = {
  proxy: 'the proxy: no access to the data directory, reaches workers and the agent through their sockets',
  reader: "read-only tiers' workers: may read the database, never write it",
  writer: "writing tiers' workers: own the database",
};

export const IDENTITY_OPTIONS: Record<string, OptionSpec> = Object.fromEntries(
  IDENTITY_ROLES.map((role) => [
    `${role}-user`,
    {
      type: 'string',
      env: `FHIRGUARD_${role.toUpperCase()}_USER`,
      arg: '<name|uid:gid>',
      default: DEFAULT_USER_NAMES[role],
      help: `identity of ${ROLE_HELP[role]}; a missing named system user is made (as root)`,
    } satisfies OptionSpec,
  ]),
);

export class IdentityError extends Error {}

function lookup(db: 'passwd' | 'group', name: string): string[] | undefined {
  try {
    return execFileSync('getent', [db, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .trim()
      .split(':');
  } catch {
    return undefined;
  }
}

/** A system user of its own group, no home and no login shell, made when missing. */
function systemUser(name: string, create: boolean): WorkerIdentity {
  let entry = lookup('passwd', name);
  if (!entry && create) {
    if (!lookup('group', name)) execFileSync('groupadd', ['--system', name], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('useradd', ['--system', '--gid', name, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--comment', 'fhirguard', name], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    entry = lookup('passwd', name);
  }
  if (!entry) throw new IdentityError(`no user ${name} on this host${create ? '' : ' (only root makes it)'}: make it, or give uid:gid`);
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/** One option's value: `uid:gid`, or the name of a system user (made when `create`). */
export function resolveIdentity(text: string, create: boolean): WorkerIdentity {
  if (/^\s*\d+:\d+\s*$/.test(text)) return parseIdentity(text);
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(text)) throw new IdentityError(`'${text}' is neither uid:gid nor a system user name`);
  const id = systemUser(text, create);
  if (id.uid === 0 || id.gid === 0) throw new IdentityError(`${text} is root (uid or gid 0): fhirguard runs no process of its own as root but the agent`);
  return id;
}

/**
 * The three identities from the options; refuses two roles sharing a uid or a gid, since
 * sharing one would give, say, the proxy the readers' access to the database.
 */
export function resolveIdentities(values: Record<string, unknown>, create: boolean): Identities {
  const ids = Object.fromEntries(
    IDENTITY_ROLES.map((role) => {
      const v = values[`${role}-user`];
      return [role, resolveIdentity(typeof v === 'string' ? v : DEFAULT_USER_NAMES[role], create)];
    }),
  ) as Record<IdentityRole, WorkerIdentity>;
  for (const [i, a] of IDENTITY_ROLES.entries()) {
    for (const b of IDENTITY_ROLES.slice(i + 1)) {
      if (ids[a].uid === ids[b].uid) throw new IdentityError(`--${a}-user and --${b}-user are the same uid ${ids[a].uid}: each role needs an identity of its own`);
      if (ids[a].gid === ids[b].gid) throw new IdentityError(`--${a}-user and --${b}-user share gid ${ids[a].gid}: each role needs a group of its own`);
    }
  }
  return ids;
}

/** One identity in every role: plain runs as the invoking user, and `record`'s short-lived world. */
export function sameIdentity(id: WorkerIdentity): Identities {
  return { proxy: id, reader: id, writer: id };
}

/** The identity a tier's workers run as. */
export function tierIdentity(ids: Identities, readOnly: boolean): WorkerIdentity {
  return readOnly ? ids.reader : ids.writer;
}
