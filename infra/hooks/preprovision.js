// azd `preprovision` hook: stops early, with a message naming the variable, on inputs that would only fail later
// (or would silently break the running broker). It changes nothing: BROKER_KEYS is generated and kept by azd itself
// (`@metadata({ azd: { type: 'generate' } })` on the brokerKeys parameter), because `azd up` resolves the Bicep
// parameters BEFORE any hook runs (Azure/azure-dev cli/azd/cmd/up.go, bicep_provider.go): a value a hook sets
// would be asked for on the first run and would change the keys on the second.
// Exit code 1 with a message naming the variable; values (keys, secrets) are never printed.
import { readFileSync } from 'node:fs';
import console from 'node:console';
import process from 'node:process';
import { URL } from 'node:url';
import { brokerKeysProblem, readAzdEnv, valueOf, webhookSecretProblem } from './azd.js';

/** Regions with Flex Consumption; the same list as the @allowed of `location` in infra/main.bicep. */
const FLEX_REGIONS = JSON.parse(readFileSync(new URL('../flex-regions.json', import.meta.url), 'utf8'));

function main() {
  const values = readAzdEnv();
  const problems = [];

  const location = valueOf('AZURE_LOCATION', values);
  if (location !== '' && !FLEX_REGIONS.includes(location.toLowerCase())) {
    problems.push(
      `AZURE_LOCATION=${location} does not offer the Flex Consumption plan; pick one of: ${FLEX_REGIONS.join(', ')} ('azd env set AZURE_LOCATION <region>'; list the current ones with 'az functionapp list-flexconsumption-locations')`,
    );
  }

  // Optional: only a deliberate override (key rotation) sets it; otherwise azd's generated value is used.
  const keys = valueOf('BROKER_KEYS', values).trim();
  if (keys !== '') {
    const problem = brokerKeysProblem(keys);
    if (problem) problems.push(`BROKER_KEYS ${problem} (fix it with 'azd env set BROKER_KEYS <keys>')`);
  }

  // Key Vault keeps the retention chosen at creation and refuses a change; the last provision recorded it.
  const recorded = valueOf('AZURE_KEY_VAULT_SOFT_DELETE_RETENTION_DAYS', values);
  const wanted = valueOf('KEY_VAULT_SOFT_DELETE_RETENTION_DAYS', values) || '90';
  if (!/^\d+$/.test(wanted) || Number(wanted) < 7 || Number(wanted) > 90) {
    problems.push('KEY_VAULT_SOFT_DELETE_RETENTION_DAYS must be a whole number of days from 7 to 90');
  } else if (recorded !== '' && Number(recorded) !== Number(wanted)) {
    problems.push(
      `KEY_VAULT_SOFT_DELETE_RETENTION_DAYS=${wanted}, but the vault was created with ${recorded} days and Key Vault cannot change it; set it back ('azd env set KEY_VAULT_SOFT_DELETE_RETENTION_DAYS ${recorded}') or create a new environment`,
    );
  }

  const vnet = valueOf('VNET_ENABLED', values);
  if (vnet !== '' && !/^(true|false)$/i.test(vnet)) problems.push('VNET_ENABLED must be true or false');

  const alertMinutes = valueOf('BROKER_SWEEP_ALERT_MINUTES', values);
  if (alertMinutes !== '' && (!/^\d+$/.test(alertMinutes) || Number(alertMinutes) > 2880)) {
    problems.push(
      'BROKER_SWEEP_ALERT_MINUTES must be a whole number of minutes from 0 (three schedule periods) to 2880 (two days, the longest a log alert looks back)',
    );
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

  // Notifications: the app would refuse to start on these (shared/notify/settings.ts), after the deployment.
  const webhookUrl = valueOf('BROKER_WEBHOOK_URL', values).trim();
  const webhookSecret = valueOf('BROKER_WEBHOOK_SECRET', values).trim();
  if (webhookUrl !== '' && webhookSecret === '') {
    problems.push(
      `BROKER_WEBHOOK_SECRET is required with BROKER_WEBHOOK_URL ('azd env set BROKER_WEBHOOK_SECRET "$(node -e "console.log('whsec_'+require('crypto').randomBytes(32).toString('base64'))")"')`,
    );
  }
  if (webhookSecret !== '' && webhookUrl === '') {
    problems.push(
      "BROKER_WEBHOOK_URL is required with BROKER_WEBHOOK_SECRET ('azd env set BROKER_WEBHOOK_URL https://…')",
    );
  }
  if (webhookUrl !== '' && !isHttpsUrl(webhookUrl)) problems.push('BROKER_WEBHOOK_URL must be an https URL');
  if (webhookSecret !== '') {
    const problem = webhookSecretProblem(webhookSecret);
    if (problem) problems.push(`BROKER_WEBHOOK_SECRET ${problem}`);
  }
  const notifyConnection = valueOf('BROKER_NOTIFY_CONNECTION', values).trim();
  if (notifyConnection !== '' && !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(notifyConnection)) {
    problems.push(
      'BROKER_NOTIFY_CONNECTION must be a connection name (lowercase letters, digits, inner hyphens)',
    );
  }
  const notifyTo = valueOf('BROKER_NOTIFY_TO', values).trim();
  if (notifyTo !== '' && !/^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/.test(notifyTo)) {
    problems.push('BROKER_NOTIFY_TO must be one mail address');
  }

  if (problems.length > 0) {
    for (const p of problems) console.error(`preprovision: ${p}`);
    process.exitCode = 1;
  }
}

function isHttpsUrl(text) {
  try {
    return new URL(text).protocol === 'https:';
  } catch {
    return false;
  }
}

try {
  main();
} catch (error) {
  console.error(`preprovision: ${error.message}`);
  if (error.stderr) console.error(error.stderr.trim());
  process.exitCode = 1;
}
