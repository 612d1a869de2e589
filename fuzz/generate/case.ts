// What a campaign sends. HTTP-level cases go through a keep-alive undici Pool; raw cases are
// bytes written to a fresh socket, for the framing shapes no well-behaved client produces.

export interface HttpCase {
  kind: 'http';
  /** The generator family that made it (totals per class). */
  klass: string;
  method: string;
  /** Path and query as sent, e.g. /fhir/Patient?name=x */
  target: string;
  /** Header pairs in order (a name may repeat). */
  headers: [string, string][];
  body?: Buffer;
}

export interface RawCase {
  kind: 'raw';
  klass: string;
  /** Written one after the other, `gapMs` apart. */
  writes: Buffer[];
  gapMs: number;
  /** Half-close after the last write (the proxy then answers what it has and closes). */
  end: boolean;
}

export type FuzzCase = HttpCase | RawCase;

/** The header each request carries so the upstream oracles can name the case they saw. */
export const CASE_HEADER = 'x-fuzz-case';
