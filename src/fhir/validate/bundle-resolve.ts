// Resolving references inside a Bundle (bundle.html#references), and the rules that need it:
// a document carries every resource its Composition references (documents.html: the subject,
// authors, attesters, custodian, encounter, section entries...), a message every focus of its
// MessageHeader (messaging.html). A reference resolves to an entry when it is that entry's
// fullUrl (a urn:uuid or an absolute URL), or, relative (`Type/id`), when the referring
// entry's RESTful fullUrl gives it a base that makes it one; a relative reference from an entry
// without a RESTful fullUrl resolves to the entry holding a resource of that type and id.

import { clip } from './primitives';
import { isObject, type Walker } from './walker';

type Json = Record<string, unknown>;

const RELATIVE_RE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const RESTFUL_RE = /^(.*\/)[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const HISTORY_RE = /\/_history\/[A-Za-z0-9\-.]{1,64}$/;
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const REST_TAIL_RE = /\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;
/** Parts of a Composition that point outside the document by design. */
const COMPOSITION_OUTSIDE = new Set(['relatesTo', 'extension', 'modifierExtension', 'contained', 'text', 'meta']);

/** The entries of a bundle as reference targets. */
export class BundleTargets {
  private readonly fullUrls = new Map<string, Json | undefined>();
  private readonly typeIds = new Map<string, Json>();

  constructor(entries: readonly unknown[]) {
    for (const entry of entries) {
      if (!isObject(entry)) continue;
      const r = isObject(entry.resource) ? entry.resource : undefined;
      if (typeof entry.fullUrl === 'string') this.fullUrls.set(entry.fullUrl, r);
      if (r && typeof r.resourceType === 'string' && typeof r.id === 'string') this.typeIds.set(`${r.resourceType}/${r.id}`, r);
    }
  }

  /** The resource of the entry `ref` names, without a base: by fullUrl, else by type and id. */
  resource(ref: string): Json | undefined {
    const plainRef = ref.replace(HISTORY_RE, '');
    const byUrl = this.fullUrls.get(ref) ?? this.fullUrls.get(plainRef);
    if (byUrl) return byUrl;
    const m = RELATIVE_RE.exec(ref) ?? REST_TAIL_RE.exec(plainRef);
    return m ? this.typeIds.get(`${m[1]}/${m[2]}`) : undefined;
  }

  /** Whether `ref`, made by the entry whose fullUrl is `from`, names an entry of the bundle. */
  resolves(ref: string, from: unknown): boolean {
    if (this.fullUrls.has(ref)) return true;
    if (SCHEME_RE.test(ref)) return this.fullUrls.has(ref.replace(HISTORY_RE, ''));
    const m = RELATIVE_RE.exec(ref);
    if (!m) return true; // conditional or malformed: not a reference into the bundle (formats are checked elsewhere)
    const plain = `${m[1]}/${m[2]}`;
    const base = typeof from === 'string' ? RESTFUL_RE.exec(from)?.[1] : undefined;
    if (base !== undefined) return this.fullUrls.has(base + plain);
    return this.typeIds.has(plain);
  }
}

/** Every Reference.reference in `node` (not local `#` ones), with its location below `at`. */
function references(node: unknown, at: string, skip: ReadonlySet<string> | undefined, out: { ref: string; at: string }[]): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) references(node[i], `${at}[${i}]`, undefined, out);
    return;
  }
  if (!isObject(node)) return;
  if (typeof node.reference === 'string' && !node.reference.startsWith('#')) out.push({ ref: node.reference, at: `${at}.reference` });
  for (const key in node) {
    if (skip?.has(key)) continue;
    const v = node[key];
    if (typeof v === 'object' && v !== null) references(v, `${at}.${key}`, undefined, out);
  }
}

/** Documents: the Composition's references resolve inside the bundle. Messages: the MessageHeader's focus. */
export function checkDocumentOrMessage(type: string, entries: readonly unknown[], w: Walker): void {
  const first = entries[0];
  if (!isObject(first) || !isObject(first.resource)) return;
  const resource = first.resource as Json;
  const refs: { ref: string; at: string }[] = [];
  let what: string;
  if (type === 'document' && resource.resourceType === 'Composition') {
    references(resource, '.entry[0].resource', COMPOSITION_OUTSIDE, refs);
    what = 'a document must contain every resource its Composition references';
  } else if (type === 'message' && resource.resourceType === 'MessageHeader') {
    references(resource.focus, '.entry[0].resource.focus', undefined, refs);
    what = 'a message must contain the focus of its MessageHeader';
  } else {
    return; // bdl-11 / bdl-12 say what is wrong
  }
  if (!refs.length) return;
  const targets = new BundleTargets(entries);
  for (const { ref, at } of refs) {
    if (ref.startsWith('urn:')) continue; // every urn: reference of a bundle is checked already (bundle.ts)
    if (!targets.resolves(ref, first.fullUrl)) w.issue('error', 'not-found', `'${clip(ref)}' is not in the bundle: ${what}`, at);
  }
}
