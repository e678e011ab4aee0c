export { createIdentity, readCookie, SESSION_COOKIE, type Identity, type Authenticated, type Credentials, type IdentityOptions } from './identity.js';
export { parsePublicKey } from './ssh-keys.js';
export { hashPassword, generatePassword } from './secrets.js';
