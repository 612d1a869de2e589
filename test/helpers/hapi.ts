// HAPI FHIR for the tests of tiers an operator's server serves: the same jar, PostgreSQL and
// policy the benchmark makes (bench/lib/hapi.ts).
export { HAPI_DIR, HAPI_PROFILES, HAPI_TEMPLATES, hapiJar, hapiWorld, type HapiWorld } from '../../bench/lib/hapi';
