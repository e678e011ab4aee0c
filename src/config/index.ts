export { loadConfig, envKeys, ConfigError, type AllowList, type OidcProviderConfig, type ResolvedConfig, type ConfigInputs } from './load.js';
export { ConfigSchema, DEFAULT_PROFILES, type Config } from './schema.js';
export { VERSION } from './version.js';
export { prepareDataDir } from './data-dir.js';
