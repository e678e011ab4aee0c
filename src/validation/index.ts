/** Schema validation the config and the API share: Ajv set up for Atrium's TypeBox schemas, and its errors as one sentence a person can act on. */
export { createAjv, describeErrors } from './ajv.js';
