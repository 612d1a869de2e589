// fhirguard's lint: eslint's and typescript-eslint's recommended rules, without type-aware
// rules (they would double the time of `make test` for little here), over src, test, bench,
// fuzz and scripts. `npm run lint`; make test runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bpf/.output/', 'examples/**/target/'] },
  // An eslint-disable comment that no longer suppresses anything is itself an error: each one
  // left names a rule that is on and fires on that line.
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        Buffer: 'readonly',
        __dirname: 'readonly',
        __filename: 'readonly',
        require: 'readonly',
        module: 'writable',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        TextDecoder: 'readonly',
        TextEncoder: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        Headers: 'readonly',
        RequestInit: 'readonly',
      },
    },
    rules: {
      // Unused arguments named _x say "the signature needs it".
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // fhirguard's validators and tests look for control characters on purpose (in narrative,
      // URLs, headers): a regex naming them is the point, not a slip.
      'no-control-regex': 'off',
    },
  },
  {
    // Tests read JSON of every shape and poke at it: `any` is the honest type there.
    files: ['test/**/*.ts', 'fuzz/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
