/** Jest runs the TypeScript sources directly through ts-jest; real processes under test are
 * started from the compiled dist/ (see test/helpers), so `npm run build` precedes `jest`.
 * Two projects: unit (the files test/projects.js names) and integration (every other). */
const { UNIT } = require('./test/projects');

const common = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  // tsconfig.test.json sets isolatedModules: ts-jest then transpiles file by file (fast) and
  // npm run typecheck does the checking.
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
};

module.exports = {
  // A global option: projects do not take it.
  testTimeout: 60000,
  projects: [
    { ...common, displayName: 'unit', testRegex: UNIT.map((u) => `${u}.*\\.test\\.ts$`) },
    { ...common, displayName: 'integration', testMatch: ['**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', ...UNIT] },
  ],
};
