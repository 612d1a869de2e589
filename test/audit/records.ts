// AuditRecords as the proxy hands them over, for the audit tests: a read by a practitioner's
// app with a patient-scoped token, and variations of it.

import type { AuditRecord } from '../../src/audit/record';

export function readRecord(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: new Date('2026-12-05T10:00:00.000Z'),
    requestId: 'req-1',
    method: 'GET',
    path: 'Observation/9',
    query: '',
    interaction: { kind: 'read', resourceType: 'Observation', id: '9' },
    status: 200,
    outcome: 'success',
    who: {
      issuer: 'https://idp.hospital.example/realms/fhir',
      clientId: 'growth-chart',
      subject: 'user-7',
      fhirUser: 'Practitioner/7',
      scopes: ['launch/patient', 'patient/Observation.rs'],
    },
    from: { ip: '10.1.2.3' },
    patients: ['Patient/123'],
    tier: 'read',
    ...over,
  };
}
