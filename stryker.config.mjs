import process from 'node:process';
import { globSync } from 'tinyglobby';

// Mutation testing of shared/ with StrykerJS (https://stryker-mutator.io/docs/stryker-js/configuration/).
// The TAP runner (https://stryker-mutator.io/docs/stryker-js/tap-runner/) runs each test file below as one
// test in its own `node` process and switches mutants by environment, so only suites that import shared/
// in-process can kill a mutant; suites that spawn the dev host on the built dist/ cannot.
// Run: `npm run mutate` (whole shared/) or `npm run mutate -- --mutate 'shared/oauth/**/*.ts'`.
// Results: docs/mutation/mutation.json and docs/mutation/README.md (node tools/mutationSummary.ts).

// By default the unit suites that mirror shared/ (test/shared/**): they are what a mutant of a module should
// fail. MUTATE_ALL_SUITES=1 adds the in-process integration and security suites (slower, kills a few more).
// Two suites are left out of the default run: each takes about 20 s (real Azurite leases and Key Vault waits)
// and would be paid again for every mutant it covers, while the fast suites beside them
// (blobLeaseLockFaults, keyVaultStoreRules) pin the same module. A mutant only they would kill counts as
// survived. MUTATE_ALL_SUITES=1 puts them back.
const slowUnitSuites = ['test/shared/lock/blobLeaseLock.test.ts', 'test/shared/store/keyVaultStore.test.ts'];
const unitSuites = globSync('test/shared/**/*.test.ts', { ignore: slowUnitSuites }).sort();
const inProcessSuites = [
  'test/integration/*.test.ts',
  'test/reliability/kvFaults.test.ts',
  'test/reliability/idpFaults.test.ts',
  'test/security/configHardening.test.ts',
  'test/security/defaultScope.test.ts',
  'test/security/idTokens.test.ts',
  'test/security/replay.test.ts',
];

export default {
  mutate: [
    'shared/**/*.ts',
    // Browser code of the console: runs in Chromium (test/browser), not in-process under node:test.
    '!shared/console/client/**',
  ],
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  tap: {
    // MUTATE_TEST_FILES (comma-separated globs) narrows the suites for a quick look at one module while writing
    // its tests; the committed report always uses the default.
    testFiles: process.env.MUTATE_TEST_FILES
      ? process.env.MUTATE_TEST_FILES.split(',')
      : process.env.MUTATE_ALL_SUITES
        ? [...unitSuites, ...slowUnitSuites, ...inProcessSuites]
        : unitSuites,
    nodeArgs: ['--test-reporter=tap', '--test-timeout=120000'],
  },
  coverageAnalysis: 'perTest',
  // Module-level code runs at import, so its mutants would need every test file: left out (listed as ignored).
  ignoreStatic: true,
  // String literals are log wording, messages and typed codes (a changed code is a compile error under tsc):
  // left out to keep a full run under an hour on two cores.
  mutator: { excludedMutations: ['StringLiteral'] },
  // A mutant that makes a suite wait forever counts as detected (timeout) after this much extra time.
  timeoutMS: 15000,
  timeoutFactor: 2,
  concurrency: 2,
  incremental: true,
  incrementalFile: 'docs/mutation/stryker-incremental.json',
  reporters: ['clear-text', 'json', 'progress'],
  jsonReporter: { fileName: 'docs/mutation/mutation.json' },
  thresholds: { high: 85, low: 75, break: null },
  ignorePatterns: [
    '.tools',
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
