// The logger each request gets as request.log. Fastify makes a child logger per request to
// bind its id; pino's child() copies the parent and serialises the binding, which the read
// benchmark's profile showed as a visible share of fhirguard's own time per request. At the
// production level (warn) almost no request writes a line, so the child is made only when
// one is written: a level the parent has off costs one comparison and nothing is made.

import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

type LogFn = (...args: unknown[]) => void;
type ChildLoggerFactory = NonNullable<FastifyServerOptions['childLoggerFactory']>;

const LEVELS: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

class LazyRequestLogger {
  private made: Logger | undefined;

  constructor(
    readonly parent: Logger,
    private readonly binding: Bindings,
  ) {}

  /** The child logger itself, made on first use. */
  get real(): Logger {
    return (this.made ??= this.parent.child(this.binding));
  }

  get level(): string {
    return this.parent.level;
  }

  isLevelEnabled(level: string): boolean {
    return this.parent.isLevelEnabled(level);
  }

  bindings(): Bindings {
    return this.real.bindings();
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.real.child(bindings, options);
  }

  flush(cb?: (err?: Error) => void): void {
    this.parent.flush(cb);
  }
}

// One method per level: a no-op unless the parent logs at that level.
for (const level of LEVELS) {
  Object.defineProperty(LazyRequestLogger.prototype, level, {
    value: function (this: LazyRequestLogger, ...args: unknown[]): void {
      if (this.parent.isLevelEnabled(level)) (this.real[level] as LogFn)(...args);
    },
  });
}

/**
 * The per-request logger bound to the request id, for an app whose logger is `root`; `logger`
 * is the parent Fastify hands over. A route or request with its own level or serializers, or a
 * plugin with a logger of its own (fhirguard sets none), gets a real child at once.
 */
export function requestChild(root: Logger, logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  if (logger !== root || opts.level !== undefined || opts.serializers !== undefined) return logger.child(bindings, opts);
  return new LazyRequestLogger(root, bindings) as unknown as FastifyBaseLogger;
}

/** Fastify's childLoggerFactory for an app whose logger is `root`. */
export function requestLogger(root: Logger): ChildLoggerFactory {
  return (logger, bindings, opts) => requestChild(root, logger, bindings, opts);
}
