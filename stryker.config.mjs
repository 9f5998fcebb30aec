// Mutation testing of shared/ with StrykerJS (https://stryker-mutator.io/docs/stryker-js/configuration/).
// The TAP runner (https://stryker-mutator.io/docs/stryker-js/tap-runner/) runs each test file below as one
// test in its own `node` process and switches mutants by environment, so only suites that import shared/
// in-process can kill a mutant; suites that spawn the dev host on the built dist/ are left out on purpose.
// Run: `npm run mutate` (whole shared/) or `npm run mutate -- --mutate 'shared/oauth/**/*.ts'`.
// Results: docs/mutation/mutation.json and docs/mutation/README.md.
export default {
  mutate: [
    'shared/**/*.ts',
    // Browser code of the console: runs in Chromium (test/browser), not in-process under node:test.
    '!shared/console/client/**',
  ],
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  tap: {
    testFiles: [
      'test/shared/**/*.test.ts',
      'test/integration/*.test.ts',
      'test/reliability/kvFaults.test.ts',
      'test/security/configHardening.test.ts',
      'test/security/defaultScope.test.ts',
      'test/security/idTokens.test.ts',
      'test/security/replay.test.ts',
    ],
    nodeArgs: ['--test-reporter=tap', '--test-timeout=120000'],
  },
  coverageAnalysis: 'perTest',
  // A mutant that makes a suite wait forever counts as killed (timeout) after this much extra time.
  timeoutMS: 30000,
  timeoutFactor: 2,
  concurrency: 2,
  incremental: true,
  incrementalFile: 'docs/mutation/stryker-incremental.json',
  reporters: ['clear-text', 'json', 'progress'],
  jsonReporter: { fileName: 'docs/mutation/mutation.json' },
  thresholds: { high: 85, low: 75, break: null },
  ignorePatterns: [
    '.tools',
    'dist',
    '.data',
    '.devhost',
    'bench/results',
    'docs/screenshots',
    'test-results',
    '.stryker-tmp',
  ],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
