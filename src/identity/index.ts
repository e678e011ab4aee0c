export { createIdentity, SESSION_COOKIE, type Identity, type Authenticated, type Credentials, type IdentityOptions } from './identity.js';
export { parsePublicKey } from './ssh-keys.js';
export { hashPassword, verifyPassword, constantTimeEqual, generatePassword } from './secrets.js';
export { TOKEN_PREFIX } from './tokens.js';
