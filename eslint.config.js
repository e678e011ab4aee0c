// @ts-check
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

const root = dirname(fileURLToPath(import.meta.url));
const src = resolve(root, 'src');

/**
 * The one package the domain's rules are written in: its schemas (TypeBox),
 * which the portal bundles too. Anything else (validators, I/O, HTTP,
 * databases, other parts) stays out of the pure core.
 */
const DOMAIN_PACKAGES = new Set(['@sinclair/typebox']);

/**
 * A part's public entries: its index, and for the API also the contract its
 * clients (CLI, portal) use without loading the server (as hono's
 * package.json lists its public subpaths).
 */
const ENTRIES = { api: ['index', 'contract'] };

/** The part of `src/` a file belongs to (`store`, `access` …), `main` for src/main.ts, or undefined outside src. */
function partOf(file) {
  const rel = relative(src, file);
  if (rel.startsWith('..') || rel === '') return undefined;
  const [first] = rel.split(sep);
  return first?.endsWith('.ts') || first?.endsWith('.js') ? 'main' : first;
}

/**
 * The layers of design §3: a part is imported only through its entry
 * (`src/<part>/index.ts`), never through its files, and the domain imports
 * nothing outside itself.
 */
const layers = {
  meta: {
    type: 'problem',
    docs: { description: 'import other parts of Atrium only through their index, and nothing into the domain' },
    messages: {
      deep: 'import {{part}} through its entry ({{entry}}), not {{file}}: other parts see only what the entry exports',
      domain: 'the domain imports nothing outside itself ({{what}}): it is the pure core every other part builds on',
    },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const from = partOf(file);
    /** @param {import('estree').Node & { source?: import('estree').Literal | null }} node */
    function check(node) {
      const spec = node.source?.value;
      if (typeof spec !== 'string') return;
      if (!spec.startsWith('.')) {
        if (from === 'domain' && !DOMAIN_PACKAGES.has(spec) && !spec.startsWith('node:')) context.report({ node, messageId: 'domain', data: { what: spec } });
        return;
      }
      const target = resolve(dirname(file), spec);
      const to = partOf(target);
      if (to === undefined || to === from || to === 'main') return;
      if (from === 'domain') {
        context.report({ node, messageId: 'domain', data: { what: relative(root, target) } });
        return;
      }
      const entries = (ENTRIES[/** @type {keyof typeof ENTRIES} */ (to)] ?? ['index']).map((e) => resolve(src, to, e));
      if (!entries.includes(target.replace(/\.(js|ts|tsx)$/, ''))) {
        context.report({ node, messageId: 'deep', data: { part: to, entry: entries.map((e) => relative(root, e) + '.ts').join(' or '), file: relative(root, target) } });
      }
    }
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
  },
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/out/', 'web/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json', './web/tsconfig.json'], tsconfigRootDir: root },
    },
    plugins: { atrium: { rules: { layers } } },
    rules: {
      'atrium/layers': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      // Atrium matches control characters on purpose: platform log markers, terminal-safe output, names that may hold none
      'no-control-regex': 'off',
      // an async function that returns at once keeps its contract's Promise shape (route handlers, runtime methods, test hooks)
      '@typescript-eslint/require-await': 'off',
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'use a union of string literals (and a const array when values are listed)' }],
    },
  },
  {
    files: ['web/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: { ...reactHooks.configs.recommended.rules },
  },
  {
    // code run in the browser through Playwright, and node:test's callbacks, are typed loosely by their libraries
    files: ['test/**/*.ts', 'src/**/*.test.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', name: ['test', 'describe', 'it', 'suite'], package: 'node:test' }] }],
      // tests read the API's JSON answers as they come (any) and check them with assertions, field by field
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: globals.node } },
);
