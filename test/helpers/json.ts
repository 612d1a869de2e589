// The one JSON type of the tests: a parsed FHIR resource or API answer, read field by field.
export type Json = Record<string, any>;
