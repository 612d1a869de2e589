// A search is allowed only when the policy lets every type it can return or filter on be
// read (search-type routed to a tier no more privileged than the search's own). Each case
// names the parameter and the type that is not allowed.

import { classify } from '../../src/fhir/classify';
import { I, outcome, P, policyOf, refusal } from './helpers';

// Practitioner and AuditEvent may not be searched; everything else may.
const policy = policyOf(`tiers:
  - name: read
  - name: write
rules:
  - resources: [Practitioner, AuditEvent]
    interactions: [search-type]
    deny: true
  - resources: ["*"]
    interactions: [read, search-type, search-system]
    tier: read
  - resources: ["*"]
    interactions: [create, update, patch, delete]
    tier: write
`);

const everything = policyOf(`tiers:
  - name: read
rules:
  - resources: ["*"]
    interactions: [search-type, search-system]
    tier: read
`);

function search(resourceType: string, ...params: [string, string][]) {
  return I('search-type', { resourceType, params: params.map(([k, v]) => P(k, v)) });
}

const READ = { tier: 'read' };

describe('_include', () => {
  test("Type:param reaches the parameter's targets", () => {
    expect(refusal(policy, search('Encounter', ['_include', 'Encounter:practitioner']))).toBe(
      'Encounter?_include=Encounter:practitioner reaches Practitioner, which the policy does not allow reading',
    );
    expect(outcome(policy, search('Encounter', ['_include', 'Encounter:subject']))).toEqual(READ);
    // participant can point to Practitioner among others: refused, naming only what is denied
    expect(refusal(policy, search('Encounter', ['_include', 'Encounter:participant']))).toBe('Encounter?_include=Encounter:participant reaches Practitioner, which the policy does not allow reading');
  });

  test('Type:param:Target reaches only Target', () => {
    expect(outcome(policy, search('Encounter', ['_include', 'Encounter:participant:RelatedPerson']))).toEqual(READ);
    expect(refusal(policy, search('Encounter', ['_include', 'Encounter:participant:Practitioner']))).toBe(
      'Encounter?_include=Encounter:participant:Practitioner reaches Practitioner, which the policy does not allow reading',
    );
  });

  test('* and Type:* reach every target of every reference parameter', () => {
    expect(refusal(policy, search('Encounter', ['_include', '*']))).toBe('Encounter?_include=* reaches Practitioner, which the policy does not allow reading');
    expect(refusal(policy, search('Encounter', ['_include', 'Encounter:*']))).toBe('Encounter?_include=Encounter:* reaches Practitioner, which the policy does not allow reading');
    // Slot's only reference parameter points to Schedule
    expect(outcome(policy, search('Slot', ['_include', '*']))).toEqual(READ);
  });

  test(':iterate follows what the included types include in turn', () => {
    // Slot → Schedule → (actor) Practitioner: one step is fine, iterating is not
    expect(refusal(policy, search('Slot', ['_include:iterate', '*']))).toBe('Slot?_include:iterate=* reaches Practitioner, which the policy does not allow reading');
    expect(refusal(policy, search('Slot', ['_include', 'Slot:schedule'], ['_include:iterate', 'Schedule:actor']))).toBe(
      'Slot?_include:iterate=Schedule:actor reaches Practitioner, which the policy does not allow reading',
    );
    expect(outcome(policy, search('Slot', ['_include', 'Slot:schedule'], ['_include:iterate', 'Schedule:actor:Location']))).toEqual(READ);
    // the older spelling :recurse counts as iterating too
    expect(refusal(policy, search('Slot', ['_include:recurse', '*']))).toMatch(/^Slot\?_include:recurse=\* reaches Practitioner/);
  });

  test('what cannot be bounded reaches every type', () => {
    expect(refusal(policy, search('Encounter', ['_include', 'Encounter:nosuch']))).toBe(
      'Encounter?_include=Encounter:nosuch can reach any resource type (Encounter has no reference parameter nosuch), including AuditEvent and Practitioner, which the policy does not allow reading',
    );
    expect(refusal(policy, search('Encounter', ['_include', 'Nonsense:x']))).toMatch(/\("Nonsense" is not a resource type\)/);
    expect(outcome(everything, search('Encounter', ['_include', 'Encounter:nosuch']))).toEqual(READ);
  });

  test('comma-separated values are each checked', () => {
    expect(refusal(policy, search('Encounter', ['_include', 'Encounter:subject,Encounter:practitioner']))).toBe(
      'Encounter?_include=Encounter:practitioner reaches Practitioner, which the policy does not allow reading',
    );
  });
});

describe('_revinclude', () => {
  test('reaches the source type', () => {
    expect(refusal(policy, search('Patient', ['_revinclude', 'AuditEvent:patient']))).toBe('Patient?_revinclude=AuditEvent:patient reaches AuditEvent, which the policy does not allow reading');
    expect(outcome(policy, search('Patient', ['_revinclude', 'Observation:subject']))).toEqual(READ);
  });

  test('* reaches every type that can point to the results', () => {
    expect(refusal(policy, search('Patient', ['_revinclude', '*']))).toMatch(/^Patient\?_revinclude=\* reaches AuditEvent, which the policy does not allow reading$/);
    // AuditEvent.entity can point to any type, so with AuditEvent denied every _revinclude=* is refused
    expect(refusal(policy, search('SubstanceSpecification', ['_revinclude', '*']))).toMatch(/^SubstanceSpecification\?_revinclude=\* reaches AuditEvent/);
    expect(outcome(everything, search('SubstanceSpecification', ['_revinclude', '*']))).toEqual(READ);
  });

  test(':iterate with * follows sources of sources', () => {
    const noSlot = policyOf(`tiers: [{name: read}]
rules:
  - resources: [Slot]
    interactions: [search-type]
    deny: true
  - resources: ["*"]
    interactions: [search-type]
    tier: read
`);
    // Slot points to Schedule, Schedule to Location: one step back from Location is fine
    expect(outcome(noSlot, search('Location', ['_revinclude', '*']))).toEqual(READ);
    expect(refusal(noSlot, search('Location', ['_revinclude:iterate', '*']))).toBe('Location?_revinclude:iterate=* reaches Slot, which the policy does not allow reading');
  });
});

describe('_has', () => {
  test('reaches its type', () => {
    expect(refusal(policy, search('Patient', ['_has:AuditEvent:patient:type', 'x']))).toBe('Patient?_has:AuditEvent:patient:type reaches AuditEvent, which the policy does not allow reading');
    expect(outcome(policy, search('Patient', ['_has:Observation:patient:code', '1234-5']))).toEqual(READ);
  });

  test('nested _has reaches every type along it', () => {
    expect(refusal(policy, search('Patient', ['_has:Observation:patient:_has:AuditEvent:entity:type', 'x']))).toBe(
      'Patient?_has:Observation:patient:_has:AuditEvent:entity:type reaches AuditEvent, which the policy does not allow reading',
    );
    expect(outcome(policy, search('Patient', ['_has:Observation:patient:_has:Provenance:target:agent', 'x']))).toEqual(READ);
  });

  test('a chain in the last field is followed from the last type', () => {
    expect(refusal(policy, search('Patient', ['_has:Observation:patient:performer:Practitioner.name', 'x']))).toBe(
      'Patient?_has:Observation:patient:performer:Practitioner.name reaches Practitioner, which the policy does not allow reading',
    );
  });

  test('an unknown type, or no type at all, reaches every type', () => {
    expect(refusal(policy, search('Patient', ['_has:Observaton:patient:code', 'x']))).toMatch(/can reach any resource type \("Observaton" is not a resource type\)/);
    expect(refusal(policy, I('search-type', { resourceType: 'Patient', params: [{ name: '_has', chain: 'name', value: 'x' }] }))).toBe(
      'Patient?_has.name can reach any resource type ("_has.name" is not _has:Type:param:field), including AuditEvent and Practitioner, which the policy does not allow reading',
    );
  });
});

describe('chained parameters', () => {
  test('without a type modifier: every target of the reference', () => {
    expect(refusal(policy, search('Encounter', ['practitioner.name', 'x']))).toBe('Encounter?practitioner.name reaches Practitioner, which the policy does not allow reading');
    // subject → Group, Device, Patient, Location: all may be read
    expect(outcome(policy, search('Observation', ['subject.name', 'x']))).toEqual(READ);
    // performer → Practitioner among others
    expect(refusal(policy, search('Observation', ['performer.name', 'x']))).toBe('Observation?performer.name reaches Practitioner, which the policy does not allow reading');
  });

  test('with a type modifier: that type only', () => {
    expect(outcome(policy, search('Observation', ['performer:Organization.name', 'x']))).toEqual(READ);
    expect(refusal(policy, search('Observation', ['performer:Practitioner.name', 'x']))).toBe('Observation?performer:Practitioner.name reaches Practitioner, which the policy does not allow reading');
  });

  test('deeper chains: every type along the way', () => {
    expect(refusal(policy, search('Observation', ['subject:Patient.general-practitioner.name', 'x']))).toBe(
      'Observation?subject:Patient.general-practitioner.name reaches Practitioner, which the policy does not allow reading',
    );
    expect(outcome(policy, search('Observation', ['subject:Patient.organization.name', 'x']))).toEqual(READ);
    expect(refusal(policy, search('Observation', ['subject:Patient.general-practitioner:Practitioner.name:exact', 'x']))).toMatch(/reaches Practitioner, which/);
    expect(outcome(policy, search('Observation', ['subject:Patient.general-practitioner:Organization.name', 'x']))).toEqual(READ);
  });

  test('a link that is not a reference parameter reaches every type', () => {
    expect(refusal(policy, search('Encounter', ['nosuch.name', 'x']))).toBe(
      'Encounter?nosuch.name can reach any resource type (nosuch is not a reference parameter of Encounter), including AuditEvent and Practitioner, which the policy does not allow reading',
    );
  });

  test('the value is never echoed (it may identify a patient)', () => {
    expect(refusal(policy, search('Encounter', ['practitioner.name', 'Smith']))).not.toContain('Smith');
  });

  test('plain and reference-by-id parameters reach nothing more', () => {
    expect(outcome(policy, search('Encounter', ['practitioner', 'Practitioner/1'], ['status', 'finished']))).toEqual(READ);
    expect(outcome(policy, search('Encounter', ['practitioner:Practitioner', '1']))).toEqual(READ);
  });
});

describe('system searches and _type', () => {
  test('_type lists the types', () => {
    const sys = (types: string) => I('search-system', { params: [P('_type', types)] });
    expect(outcome(policy, sys('Patient,Observation'))).toEqual(READ);
    expect(refusal(policy, sys('Patient,Practitioner'))).toBe('[base]?_type=Patient,Practitioner reaches Practitioner, which the policy does not allow reading');
  });

  test('without _type: every type', () => {
    expect(refusal(policy, I('search-system'))).toBe(
      'a system search without _type can reach any resource type (no _type narrows it), including AuditEvent and Practitioner, which the policy does not allow reading',
    );
    expect(outcome(everything, I('search-system'))).toEqual(READ);
  });

  test('includes of a system search start from its _type types', () => {
    expect(refusal(policy, I('search-system', { params: [P('_type', 'Encounter'), P('_include', '*')] }))).toBe('[base]?_include=* reaches Practitioner, which the policy does not allow reading');
  });
});

describe('compartment searches', () => {
  const inCompartment = (owner: string, resourceType?: string, ...params: [string, string][]) =>
    I(resourceType ? 'search-type' : 'search-system', {
      ...(resourceType ? { resourceType } : {}),
      compartment: { resourceType: owner, id: '7' },
      params: params.map(([k, v]) => P(k, v)),
    });

  test('the owner type is reached too', () => {
    expect(outcome(policy, inCompartment('Patient', 'Observation'))).toEqual(READ);
    expect(refusal(policy, inCompartment('Practitioner', 'Encounter'))).toBe('Practitioner/[id]/Encounter reaches Practitioner, which the policy does not allow reading');
  });

  test('Type/id/* reaches every member type of the compartment', () => {
    // AuditEvent is in the Patient compartment (by patient); Practitioner is not
    expect(refusal(policy, inCompartment('Patient'))).toBe('Patient/[id]/* reaches AuditEvent, which the policy does not allow reading');
    expect(outcome(policy, inCompartment('Patient', undefined, ['_type', 'Observation,Condition']))).toEqual(READ);
    expect(refusal(policy, inCompartment('Patient', undefined, ['_type', 'Observation,AuditEvent']))).toBe(
      'Patient/[id]/*?_type=Observation,AuditEvent reaches AuditEvent, which the policy does not allow reading',
    );
    // every compartment's R4 CompartmentDefinition bounds its `*`: Encounter's has neither
    // AuditEvent nor Practitioner, Device's has AuditEvent (by agent)
    expect(outcome(policy, inCompartment('Encounter'))).toEqual(READ);
    expect(refusal(policy, inCompartment('Device'))).toBe('Device/[id]/* reaches AuditEvent, which the policy does not allow reading');
  });

  test('_type is reached at every level: type, system, compartment type, compartment *', () => {
    const practitioner: [string, string] = ['_type', 'Practitioner'];
    expect(refusal(policy, search('Observation', practitioner))).toBe('Observation?_type=Practitioner reaches Practitioner, which the policy does not allow reading');
    expect(refusal(policy, I('search-system', { params: [P(...practitioner)] }))).toBe('[base]?_type=Practitioner reaches Practitioner, which the policy does not allow reading');
    expect(refusal(policy, inCompartment('Patient', 'Observation', practitioner))).toBe('Patient/[id]/Observation?_type=Practitioner reaches Practitioner, which the policy does not allow reading');
    expect(refusal(policy, inCompartment('Patient', undefined, practitioner))).toBe('Patient/[id]/*?_type=Practitioner reaches Practitioner, which the policy does not allow reading');
    expect(outcome(policy, inCompartment('Patient', 'Observation', ['_type', 'Observation']))).toEqual(READ);
  });

  test('parameters of a compartment search are checked too', () => {
    expect(refusal(policy, inCompartment('Patient', 'Encounter', ['_include', 'Encounter:practitioner']))).toBe(
      'Patient/[id]/Encounter?_include=Encounter:practitioner reaches Practitioner, which the policy does not allow reading',
    );
  });
});

describe('conditional interactions', () => {
  test('their criteria are a search', () => {
    const cond = (kind: 'create' | 'update' | 'patch' | 'delete', ...params: [string, string][]) => I(kind, { resourceType: 'Encounter', conditional: true, params: params.map(([k, v]) => P(k, v)) });
    expect(outcome(policy, cond('update', ['identifier', 'x']))).toEqual({ tier: 'write' });
    expect(refusal(policy, cond('update', ['practitioner.name', 'x']))).toBe('conditional update Encounter?practitioner.name reaches Practitioner, which the policy does not allow reading');
    expect(refusal(policy, cond('delete', ['_has:AuditEvent:entity:type', 'x']))).toMatch(/^conditional delete Encounter\?_has:AuditEvent:entity:type reaches AuditEvent/);
    // the conditional type itself must be searchable
    const audit = I('create', { resourceType: 'AuditEvent', conditional: true, params: [P('identifier', 'x')] });
    expect(refusal(policy, audit)).toBe('conditional create AuditEvent?identifier reaches AuditEvent, which the policy does not allow reading');
    expect(outcome(policy, I('create', { resourceType: 'AuditEvent' }))).toEqual({ tier: 'write' });
  });
});

describe('_list, _filter, _query', () => {
  test('_list reaches List; _filter and _query are not analysed, so they reach every type', () => {
    const noList = policyOf(`tiers: [{name: read}]
rules:
  - resources: [List]
    interactions: [search-type]
    deny: true
  - resources: ["*"]
    interactions: [search-type]
    tier: read
`);
    expect(refusal(noList, search('Patient', ['_list', '42']))).toBe('Patient?_list=42 reaches List, which the policy does not allow reading');
    expect(refusal(policy, search('Patient', ['_filter', 'name eq x']))).toBe(
      'Patient?_filter can reach any resource type (fhirguard does not analyse _filter), including AuditEvent and Practitioner, which the policy does not allow reading',
    );
    expect(outcome(everything, search('Patient', ['_filter', 'name eq x']))).toEqual(READ);
  });
});

describe('tiers: a search may not reach a type the policy reads only at a more privileged tier', () => {
  const tiered = policyOf(`tiers:
  - name: public
  - name: clinical
rules:
  - resources: [Practitioner, Organization, Location]
    interactions: [read, search-type]
    tier: public
  - resources: ["*"]
    interactions: [read, search-type]
    tier: clinical
`);

  test('lower tier reaching higher is refused; higher reaching lower is fine', () => {
    expect(refusal(tiered, search('Practitioner', ['_revinclude', 'Encounter:practitioner']))).toBe(
      "Practitioner?_revinclude=Encounter:practitioner reaches Encounter, which the policy lets only tier 'clinical' read, more privileged than tier 'public' serving this search-type",
    );
    expect(outcome(tiered, search('Encounter', ['_include', 'Encounter:practitioner']))).toEqual({ tier: 'clinical' });
    expect(outcome(tiered, search('Practitioner', ['_include', 'Practitioner:*']))).toEqual({ tier: 'public' });
  });
});

describe('through classify: the parameters as fhirguard parses them', () => {
  const get = (url: string) => {
    const q = url.indexOf('?');
    return classify({ method: 'GET', path: url.slice(0, q), query: url.slice(q + 1), headers: {} });
  };

  test.each([
    ['/Encounter?_include=Encounter:practitioner', 'Encounter?_include=Encounter:practitioner reaches Practitioner'],
    ['/Encounter?practitioner.name=x', 'Encounter?practitioner.name reaches Practitioner'],
    ['/Observation?performer:Practitioner.name=x', 'Observation?performer:Practitioner.name reaches Practitioner'],
    ['/Slot?_include:iterate=*', 'Slot?_include:iterate=* reaches Practitioner'],
    ['/Patient?_has:Observation:patient:_has:AuditEvent:entity:type=x', 'Patient?_has:Observation:patient:_has:AuditEvent:entity:type reaches AuditEvent'],
    ['/Patient?_revinclude=AuditEvent:patient', 'Patient?_revinclude=AuditEvent:patient reaches AuditEvent'],
    ['/?_type=Patient,Practitioner', '[base]?_type=Patient,Practitioner reaches Practitioner'],
    ['/Practitioner/1/Encounter?status=finished', 'Practitioner/[id]/Encounter reaches Practitioner'],
    ['/Patient/1/*?_type=AuditEvent', 'Patient/[id]/*?_type=AuditEvent reaches AuditEvent'],
  ])('%s', (url, start) => {
    expect(refusal(policy, get(url))).toMatch(new RegExp(`^${start.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  test.each([
    '/Encounter?_include=Encounter:subject&status=finished',
    '/Observation?subject:Patient.name=x&_revinclude=Provenance:target',
    '/Patient/1/Observation?code=1234-5',
    '/?_type=Patient,Observation',
  ])('%s is allowed', (url) => {
    expect(outcome(policy, get(url))).toEqual(READ);
  });
});
