export { createIdentity, SignInRefused, type Identity, type Authenticated, type Credentials, type IdentityOptions } from './identity.js';
export { createOidc, OidcDiscoveryFailed, type Oidc, type OidcIdentity } from './oidc.js';
export { createCookies, DuplicateCookie, isAtriumCookieName, type CookieKind, type Cookies } from './cookies.js';
export { parsePublicKey } from './ssh-keys.js';
export { hashPassword, generatePassword } from './secrets.js';
export { mintToken } from './tokens.js';
export { createWorkloadIdentity, workloadSubject, SigningKeysSealedElsewhere, type WorkloadIdentity, type IssuedToken, type SigningKeyView, type WorkloadSubject } from './workload.js';
export { loadSshKeys, sshFingerprint, ed25519FromSeed, type SshKeys, type SshKeyPair } from './ssh-host-keys.js';
