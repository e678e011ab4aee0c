import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormats from 'ajv-formats';

/**
 * Ajv set up for Atrium's schemas. Bodies and config are validated strictly
 * (no type coercion, unknown fields rejected, defaults applied); query strings
 * and path parameters arrive as text, so they are coerced.
 */
export function createAjv(opts: { coerce: boolean }): Ajv {
  const options: Options = {
    allErrors: false,
    // errors carry their schema, so messages can quote a field's description
    verbose: true,
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: opts.coerce ? 'array' : false,
    strict: false,
  };
  const ajv = new Ajv(options);
  addFormats.default(ajv, ['date-time']);
  return ajv;
}

/** Turns Ajv errors into one sentence a person can act on, e.g. `body.name: 2–32 characters …`. */
export function describeErrors(errors: ErrorObject[] | null | undefined, root: string): string {
  if (!errors || errors.length === 0) return `${root}: invalid`;
  // A failed union reports each branch first; its own anyOf error says it better.
  const e = errors.find((x) => x.keyword === 'anyOf') ?? errors[0]!;
  const path = root + (e.instancePath ? e.instancePath.replace(/\//g, '.') : '');
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path}: unknown field ${JSON.stringify(e.params.additionalProperty)}`;
    case 'required':
      return `${path}: missing required field ${JSON.stringify(e.params.missingProperty)}`;
    case 'pattern':
    case 'minLength':
    case 'maxLength': {
      const rule = (e.parentSchema as { description?: string } | undefined)?.description;
      return rule ? `${path}: must be ${rule}` : `${path}: ${e.message}`;
    }
    case 'minProperties':
      return `${path}: give at least one field to change`;
    case 'enum':
      return `${path}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'anyOf': {
      const variants = errors.filter((x) => x.instancePath === e.instancePath && x.keyword === 'const').map((x) => x.params.allowedValue as unknown);
      return variants.length > 0
        ? `${path}: must be one of ${variants.map((v) => JSON.stringify(v)).join(', ')}`
        : `${path}: does not match any allowed form`;
    }
    default:
      return `${path}: ${e.message ?? 'invalid'}`;
  }
}
