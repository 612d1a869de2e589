import pino, { type Logger } from 'pino';
import { Writable } from 'node:stream';
import { requestChild } from '../../src/proxy/request-logger';

/** A pino logger at `level` writing JSON lines into an array, synchronously. */
function capture(level: string): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}

/** The request logger fhirguard's app would give a request, for an app whose logger is `log`. */
function requestLogger(log: Logger, bindings: Record<string, unknown>, opts: { level?: string }): Logger {
  return requestChild(log, log, bindings, opts) as Logger;
}

describe('per-request logger', () => {
  it('writes at enabled levels with the request id bound, and nothing at disabled ones', () => {
    const { log, lines } = capture('warn');
    const parentChild = jest.spyOn(log, 'child');
    const reqLog = requestLogger(log, { reqId: 'r-1' }, {});
    reqLog.info({ a: 1 }, 'not written');
    reqLog.debug('not written either');
    expect(parentChild).not.toHaveBeenCalled(); // nothing written, no child made
    reqLog.warn({ b: 2 }, 'written');
    reqLog.error(new Error('boom'), 'failed');
    expect(parentChild).toHaveBeenCalledTimes(1); // made once, on the first line, then kept
    expect(lines.map((l) => l.msg)).toEqual(['written', 'failed']);
    expect(lines[0]).toMatchObject({ reqId: 'r-1', b: 2, level: 40 });
    expect(lines[1]).toMatchObject({ reqId: 'r-1', level: 50, err: { message: 'boom' } });
  });

  it('answers level questions from the parent and makes real children on request', () => {
    const { log, lines } = capture('info');
    const reqLog = requestLogger(log, { reqId: 'r-2' }, {});
    expect(reqLog.level).toBe('info');
    expect(reqLog.isLevelEnabled('info')).toBe(true);
    expect(reqLog.isLevelEnabled('debug')).toBe(false);
    expect(reqLog.bindings()).toEqual({ reqId: 'r-2' });
    reqLog.child({ tier: 'read' }).info('from a grandchild');
    expect(lines[0]).toMatchObject({ reqId: 'r-2', tier: 'read', msg: 'from a grandchild' });
  });

  it('gives a request with its own level a real child at once', () => {
    const { log, lines } = capture('warn');
    const reqLog = requestLogger(log, { reqId: 'r-3' }, { level: 'debug' });
    reqLog.debug('route-level debug');
    expect(lines[0]).toMatchObject({ reqId: 'r-3', msg: 'route-level debug' });
  });

  it("gives a request whose parent is not the app's own logger a real child", () => {
    const { log, lines } = capture('warn');
    const plugin = log.child({ plugin: 'p' });
    const made = jest.spyOn(plugin, 'child');
    (requestChild(log, plugin, { reqId: 'r-4' }, {}) as Logger).warn('from a plugin');
    expect(made).toHaveBeenCalledTimes(1);
    expect(lines[0]).toMatchObject({ plugin: 'p', reqId: 'r-4', msg: 'from a plugin' });
  });
});
