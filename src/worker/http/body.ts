// Request bodies: read with a size bound, decoded by content type. What the worker accepts:
// FHIR JSON (`application/fhir+json`, also `application/json`), JSON Patch
// (`application/json-patch+json`) for PATCH, and form encoding for POST `_search`.

import type { IncomingMessage } from 'node:http';
import { FhirError, refuse } from '../../fhir/outcome';

/** Bigger than any Synthea transaction bundle (the largest is under 4 MiB) with room to spare. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** JSON nesting deeper than any FHIR resource; bounds the recursion of everything downstream. */
export const MAX_JSON_DEPTH = 128;

export class BodyTooLarge extends FhirError {
  constructor(limit: number) {
    super(413, 'body-too-large', `the request body is larger than ${limit} bytes`, 'too-long');
  }
}

/** Reads the whole body, or rejects with BodyTooLarge once it passes `limit`. */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new BodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (!failed) reject(err);
    });
  });
}

function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (d > max) max = d;
    if (d > MAX_JSON_DEPTH) return d;
    if (v && typeof v === 'object') for (const child of Object.values(v)) if (child && typeof child === 'object') stack.push([child, d + 1]);
  }
  return max;
}

export function parseJson(buf: Buffer): unknown {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw refuse(400, 'bad-json', 'structure', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (depthOf(value) > MAX_JSON_DEPTH) throw refuse(400, 'too-deep', 'structure', `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

function checkCharset(header: string | undefined): void {
  const m = /charset\s*=\s*"?([^";\s]+)/i.exec(header ?? '');
  if (m && m[1].toLowerCase() !== 'utf-8' && m[1].toLowerCase() !== 'utf8') {
    throw refuse(415, 'unsupported-charset', 'not-supported', `charset ${m[1]} is not supported; send UTF-8`);
  }
}

const FHIR_JSON = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);

/**
 * Decodes a non-empty body. `kind` says what the route takes: a resource (JSON), a JSON
 * Patch, or `_search` form fields.
 */
export function decodeBody(buf: Buffer, contentType: string | undefined, kind: 'json' | 'patch' | 'form'): unknown {
  const type = mediaType(contentType);
  checkCharset(contentType);
  if (kind === 'form') {
    if (type !== 'application/x-www-form-urlencoded') {
      throw refuse(415, 'unsupported-media-type', 'not-supported', `POST _search takes application/x-www-form-urlencoded, not '${type}'`);
    }
    return [...new URLSearchParams(buf.toString('utf8'))];
  }
  if (kind === 'patch') {
    if (type === 'application/json-patch+json' || type === 'application/json') return parseJson(buf);
    throw refuse(415, 'unsupported-media-type', 'not-supported', `PATCH takes application/json-patch+json, not '${type || 'no content type'}' (FHIRPath Patch is not supported)`);
  }
  if (!FHIR_JSON.has(type)) {
    throw refuse(415, 'unsupported-media-type', 'not-supported', `the body must be application/fhir+json, not '${type || 'no content type'}'`);
  }
  return parseJson(buf);
}
