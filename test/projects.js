// Which test files make the `unit` jest project (npm run test:unit, the fast loop): no root, no
// network, no process started, seconds in all. Everything else is `integration`. make test
// runs both. test/unit-project.test.ts proves the unit files keep to that.
const UNIT = [
  '/test/archive/',
  '/test/fhir/',
  '/test/metrics/',
  '/test/policy/',
  // test/auth/ but the tests that start the proxy and an OpenID provider
  '/test/auth/(?!smart-.*\\.test\\.ts$)',
  // test/validate/ but the files that run the CLI or fetch a FHIR package
  '/test/validate/(?!(cli|datatypes|ips-package|profiles)\\.test\\.ts$)',
  // test/audit/ but the sink (a FHIR server on loopback), the CLI (the built bin/fhirguard) and
  // the proxy's own trail (the proxy process)
  '/test/audit/(?!(sink|cli|proxy-trail)\\.test\\.ts$)',
];
module.exports = { UNIT };
