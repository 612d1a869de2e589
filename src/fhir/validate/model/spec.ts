// The validator's model: what fhirguard keeps of the R4 StructureDefinitions and ValueSets.
// It is a plain JSON shape so that it can be generated once (model/generate.ts writes
// r4-model.json) and loaded at start in milliseconds instead of parsing ~50 MB of
// definitions; custom profiles are turned into the same shape when they are loaded.

export type Strength = 'required' | 'extensible' | 'preferred' | 'example';

export interface ModelInvariant {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression: string;
}

export interface ModelTypeRef {
  /** A FHIR type name (`string`, `CodeableConcept`, `Resource`), or a backbone type's path (`Patient.contact`). */
  code: string;
  /** A core constraint of the type to validate against instead (SimpleQuantity for Quantity). */
  as?: string;
  /** For Reference and canonical: the resource type names a target may have (absent: any). */
  targets?: string[];
}

export interface ModelElement {
  /** The JSON property name; for a choice element, the name without `[x]` (`value`). */
  name: string;
  min: number;
  /** -1 for `*`. */
  max: number;
  /** Whether the JSON property is an array (the base definition allows more than one). */
  array: boolean;
  types: ModelTypeRef[];
  /** A `[x]` element: the JSON property is name + capitalised type code. */
  choice?: true;
  binding?: { strength: Strength; valueSet: string };
  invariants?: ModelInvariant[];
  /** Set by profiles: the value must equal `fixed` exactly, or contain `pattern`. */
  fixed?: unknown;
  pattern?: unknown;
  maxLength?: number;
}

export interface ModelType {
  kind: 'primitive' | 'complex' | 'resource' | 'backbone';
  abstract?: true;
  /** The type this one specialises or constrains (Patient → DomainResource, Age → Quantity). */
  base?: string;
  /** For a constrained datatype (SimpleQuantity): the type whose paths it uses (Quantity). */
  constrains?: string;
  /** Children in definition order (the root element itself is not listed). */
  elements: ModelElement[];
  /** Invariants declared on the root element (resource- or datatype-wide). */
  invariants?: ModelInvariant[];
}

/** Codes per code system; `null` when the value set cannot be expanded offline. */
export type ModelValueSet = Record<string, string[]> | null;

/** What an extension's definition allows for a value (its `Extension.value[x]`). */
export interface ModelExtensionValue {
  /** Type codes (`dateTime`, `CodeableConcept`); a specialisation (Age for Quantity) fits too. */
  types: string[];
  min: number;
  /** The value set of a required binding, by canonical URL without version. */
  valueSet?: string;
}

/** A nested extension of a complex extension: one slice of `Extension.extension`. */
export interface ModelExtensionPart {
  min: number;
  /** -1 for `*`. */
  max: number;
  value?: ModelExtensionValue;
}

/** An extension definition, reduced to what checking an extension where it is used needs. */
export interface ModelExtension {
  /**
   * Where it may be used: type names (`Patient`, `HumanName`, `Element`) and element paths
   * (`Patient.birthDate`), or `extension:<url>` for use inside another extension. `*` when a
   * context cannot be judged offline (a FHIRPath context): then anywhere.
   */
  contexts: string[];
  /** How often it may appear where it is used (-1 for `*`). */
  max: number;
  /** Carried in `modifierExtension` (isModifier), never in `extension`. */
  modifier?: true;
  /** Its value; absent when it takes none (a complex extension). */
  value?: ModelExtensionValue;
  /** Nested extensions by url, when it takes them; absent when it takes none. */
  parts?: Record<string, ModelExtensionPart>;
  /** Nested extensions other than the parts are not allowed (closed slicing). */
  closed?: true;
}

/** A code system shipped whole: each concept as [code, display and designations...]. */
export interface ModelCodeSystem {
  caseInsensitive?: true;
  concepts: [string, ...string[]][];
}

export interface Model {
  fhirVersion: string;
  /** Resources, datatypes and backbone elements (keyed by path, e.g. `Patient.contact`). */
  types: Record<string, ModelType>;
  /** Value sets of required bindings, by canonical URL without version. */
  valueSets: Record<string, ModelValueSet>;
  /** Extension definitions by canonical URL without version. */
  extensions: Record<string, ModelExtension>;
  /** Code systems of the specification that can be checked offline, by canonical URL. */
  codeSystems: Record<string, ModelCodeSystem>;
}
