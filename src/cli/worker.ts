// `fhirguard worker`: one reference FHIR worker process, as `fhirguard up` starts them for
// every tier (and as tests start them). Logs are JSON lines on stderr only: a read-only
// worker writes no file at all.

import pino from 'pino';
import { startWorker } from '../worker/worker';
import { LOG_LEVEL_OPTION, type Command } from './command';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run a reference FHIR R4 worker over the shared SQLite database',
  usage: '--tier <name> --db <file> --listen <unix:/path | host:port> [--read-only]',
  options: {
    tier: { type: 'string', env: 'FHIRGUARD_TIER', arg: '<name>', help: 'the tier this worker serves (for logs)' },
    db: { type: 'string', env: 'FHIRGUARD_DB', arg: '<file>', help: 'the SQLite database file shared by all workers' },
    listen: {
      type: 'string',
      env: 'FHIRGUARD_WORKER_LISTEN',
      arg: '<unix:/path | host:port>',
      help: 'where to serve FHIR (a stale socket file there is replaced)',
    },
    'read-only': {
      type: 'boolean',
      env: 'FHIRGUARD_READ_ONLY',
      help: 'open the database read-only and refuse writes with 405',
    },
    'log-level': LOG_LEVEL_OPTION,
  },
  details: [
    'Serves FHIR R4 JSON at the root of the listener; GET /metadata is the health check.',
    'A write worker creates the database if it is missing; a read-only worker needs it to exist',
    'and sees every commit of the write workers from its next request on.',
    'SIGTERM or SIGINT: stop accepting, finish in-flight requests, close the database, exit 0.',
  ].join('\n'),
  async run(values) {
    const log = pino({ level: String(values['log-level'] ?? 'info'), base: { pid: process.pid, tier: values.tier }, name: 'fhirguard-worker' }, pino.destination({ dest: 2, sync: true }));
    for (const name of ['tier', 'db', 'listen'] as const) {
      if (typeof values[name] !== 'string' || values[name] === '') {
        log.fatal(`--${name} is required`);
        return 2;
      }
    }
    // Until it serves there is nothing to finish: a stop request ends it at once. (In its
    // container the worker is pid 1, which ignores a signal it has no handler for, so
    // without this a worker stopped while starting would only go at the SIGKILL.)
    const early = (): void => process.exit(143);
    process.once('SIGTERM', early);
    process.once('SIGINT', early);
    let worker;
    try {
      worker = await startWorker({
        db: values.db as string,
        listen: values.listen as string,
        readOnly: values['read-only'] === true,
        log,
      });
    } catch (err) {
      log.fatal({ err }, `worker cannot start: ${(err as Error).message}`);
      return 1;
    }
    const running = worker;
    process.off('SIGTERM', early);
    process.off('SIGINT', early);
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log.info({ signal }, 'stopping');
        running.close().then(resolve, (err) => {
          log.error({ err }, 'stop failed');
          resolve();
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};
