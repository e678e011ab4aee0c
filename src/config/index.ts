export { loadConfig, envKeys, ConfigError, type ResolvedConfig, type ConfigInputs } from './load.js';
export { ConfigSchema, DEFAULT_PROFILES, type Config } from './schema.js';
