/** Jest runs the TypeScript sources directly through ts-jest; real processes under test are
 * started from the compiled dist/ (see test/helpers), so `npm run build` precedes `jest`. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.test.json' }] },
  testTimeout: 60000,
};
