// azd `preprovision` hook. Gives this azd environment its BROKER_KEYS once (stable afterwards, so connect links and
// state cookies survive every re-provision) and stops early on inputs that would only fail after deployment.
// Exit code 1 with a message naming the variable; values (keys, secrets) are never printed.
import { randomBytes } from 'node:crypto';
import console from 'node:console';
import process from 'node:process';
import { brokerKeysProblem, readAzdEnv, runAzd, valueOf } from './azd.js';

/** 32 random bytes, base64url. Never starts with '-', which `azd env set` would parse as a flag. */
function newBrokerKey() {
  for (;;) {
    const key = randomBytes(32).toString('base64url');
    if (!key.startsWith('-')) return key;
  }
}

function main() {
  const values = readAzdEnv();
  const problems = [];

  // Read from the azd environment itself, not process.env: only a value saved there is stable across runs.
  const existing = typeof values.BROKER_KEYS === 'string' ? values.BROKER_KEYS.trim() : '';
  if (existing === '') {
    runAzd(['env', 'set', 'BROKER_KEYS', newBrokerKey()], { secret: true });
    console.log(
      'preprovision: generated BROKER_KEYS for this azd environment (stored in .azure/<env>/.env).',
    );
  } else {
    const problem = brokerKeysProblem(existing);
    if (problem) problems.push(`BROKER_KEYS ${problem} (fix it with 'azd env set BROKER_KEYS <keys>')`);
    else console.log('preprovision: BROKER_KEYS already set; keeping it.');
  }

  const credential = valueOf('MICROSOFT_CREDENTIAL', values);
  if (credential === 'secret' && valueOf('MICROSOFT_CLIENT_SECRET', values) === '') {
    problems.push(
      "MICROSOFT_CREDENTIAL=secret needs MICROSOFT_CLIENT_SECRET ('azd env set MICROSOFT_CLIENT_SECRET <secret>')",
    );
  }
  if (credential === 'certificate' && valueOf('MICROSOFT_CERTIFICATE_NAME', values) === '') {
    problems.push(
      "MICROSOFT_CREDENTIAL=certificate needs MICROSOFT_CERTIFICATE_NAME, the name of a Key Vault certificate ('azd env set MICROSOFT_CERTIFICATE_NAME <name>')",
    );
  }
  if (valueOf('BROKER_AUTH_MODE', values) === 'entra' && valueOf('BROKER_AUTH_AUDIENCE', values) === '') {
    problems.push(
      "BROKER_AUTH_MODE=entra needs BROKER_AUTH_AUDIENCE ('azd env set BROKER_AUTH_AUDIENCE api://<app-id>')",
    );
  }
  const schedule = valueOf('BROKER_REFRESH_SCHEDULE', values);
  if (schedule !== '' && !/^\S+( \S+){4,5}$/.test(schedule.trim())) {
    problems.push('BROKER_REFRESH_SCHEDULE must be a 5- or 6-field NCRONTAB expression');
  }

  if (problems.length > 0) {
    for (const p of problems) console.error(`preprovision: ${p}`);
    process.exitCode = 1;
  }
}

try {
  main();
} catch (error) {
  console.error(`preprovision: ${error.message}`);
  if (error.stderr) console.error(error.stderr.trim());
  process.exitCode = 1;
}
