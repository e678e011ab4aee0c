/**
 * The API's contract for its clients (the CLI and the portal): the schemas
 * of every request and answer, and the readers of its error body. A public
 * entry beside `index.ts` that loads no server code, so clients bundle or
 * start without it.
 */
export { isApiError, errorMessage } from './errors.js';
export * from './schemas.js';
export * as schemas from './schemas.js';
