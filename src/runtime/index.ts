export * from './types.js';
export { createLocalRuntime, type LocalRuntimeOptions } from './local/index.js';
