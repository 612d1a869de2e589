// The code systems the R4 definitions ship whole (content `complete`) and own: HL7's
// (http://hl7.org/fhir/..., http://terminology.hl7.org/CodeSystem/..., the v2 tables and
// v3 code systems among them). Each is reduced to its codes with their display and
// designations, so that a Coding in one of them can be checked without a terminology server:
// the code exists, the display is one the code system gives it.

import type { ModelCodeSystem } from './spec';

interface Concept {
  code: string;
  display?: string;
  designation?: { value?: string }[];
  concept?: Concept[];
}

export interface CodeSystemDefinitionLike {
  resourceType: string;
  url?: string;
  content?: string;
  caseSensitive?: boolean;
  concept?: Concept[];
}

const OWNED = ['http://hl7.org/fhir/', 'http://terminology.hl7.org/CodeSystem/'];

/** A designation HL7's translators marked unfinished (`PrescriptionMédicamenteuseTODO`): not a display any client should send. */
const UNFINISHED = /TODO/;

function flatten(concepts: Concept[], out: ModelCodeSystem['concepts']): void {
  for (const c of concepts) {
    const names = new Set<string>();
    if (c.display) names.add(c.display);
    for (const d of c.designation ?? []) if (d.value && !UNFINISHED.test(d.value)) names.add(d.value);
    out.push([c.code, ...names]);
    if (c.concept) flatten(c.concept, out);
  }
}

/** The complete HL7 code systems among `resources`, by canonical URL. */
export function buildCodeSystems(resources: CodeSystemDefinitionLike[]): Record<string, ModelCodeSystem> {
  const out: Record<string, ModelCodeSystem> = {};
  const urls = resources
    .filter((r) => r.resourceType === 'CodeSystem' && r.content === 'complete' && r.url && OWNED.some((p) => r.url!.startsWith(p)) && r.concept?.length)
    .sort((a, b) => (a.url! < b.url! ? -1 : a.url! > b.url! ? 1 : 0));
  for (const cs of urls) {
    const system: ModelCodeSystem = { concepts: [] };
    if (cs.caseSensitive === false) system.caseInsensitive = true;
    flatten(cs.concept!, system.concepts);
    out[cs.url!] = system;
  }
  return out;
}
