/** HTTP plumbing the API and the browser proxy share: one writer for errors, on a response or on a raw upgraded socket. */
export { errorBody, sendError, sendUpgradeError } from './errors.js';
