// azd `postprovision` hook: prints the one manual step left (the Entra app registration) and the first calls,
// filled in with this environment's real values. It prints no secret: only whether a client secret is set.
import console from 'node:console';
import process from 'node:process';
import { readAzdEnv, valueOf } from './azd.js';

const REQUIRED_OUTPUTS = [
  'FUNCTION_APP_URL',
  'REDIRECT_URI',
  'AZURE_KEY_VAULT_ENDPOINT',
  'AZURE_FUNCTION_APP_NAME',
  'AZURE_RESOURCE_GROUP',
  'MANAGED_IDENTITY_CLIENT_ID',
  'MANAGED_IDENTITY_PRINCIPAL_ID',
  'FEDERATED_CREDENTIAL_ISSUER',
  'FEDERATED_CREDENTIAL_AUDIENCE',
];

/** Mirrors `effectiveCredential` in infra/main.bicep. */
function credentialInUse(v) {
  const chosen = v.MICROSOFT_CREDENTIAL || 'auto';
  if (chosen !== 'auto') return chosen;
  if (v.MICROSOFT_CERTIFICATE_NAME) return 'certificate';
  return v.MICROSOFT_CLIENT_SECRET ? 'secret' : 'managed_identity';
}

function accountTypes(tenant) {
  if (tenant === 'common') return 'Accounts in any organizational directory and personal Microsoft accounts';
  if (tenant === 'organizations') return 'Accounts in any organizational directory (multitenant)';
  if (tenant === 'consumers') return 'Personal Microsoft accounts only';
  return `Accounts in this organizational directory only (tenant ${tenant})`;
}

function nextSteps(v) {
  const appId = v.MICROSOFT_CLIENT_ID || '<application-client-id>';
  const tenant = v.MICROSOFT_TENANT || 'common';
  const credential = credentialInUse(v);
  const url = v.FUNCTION_APP_URL;
  const fic = JSON.stringify({
    name: 'token-broker-managed-identity',
    issuer: v.FEDERATED_CREDENTIAL_ISSUER,
    subject: v.MANAGED_IDENTITY_PRINCIPAL_ID,
    audiences: [v.FEDERATED_CREDENTIAL_AUDIENCE],
  });
  const lines = [
    '',
    'Token broker provisioned.',
    `  App URL        ${url}`,
    `  Redirect URI   ${v.REDIRECT_URI}`,
    `  Key Vault      ${v.AZURE_KEY_VAULT_ENDPOINT}`,
    `  Identity       client id ${v.MANAGED_IDENTITY_CLIENT_ID}, principal (object) id ${v.MANAGED_IDENTITY_PRINCIPAL_ID}`,
    `  Entra app      ${v.MICROSOFT_CLIENT_ID ? v.MICROSOFT_CLIENT_ID : 'not configured yet (MICROSOFT_CLIENT_ID is empty)'}`,
    `  Credential     ${credential}${credential === 'secret' && !v.MICROSOFT_CLIENT_SECRET ? ' (MICROSOFT_CLIENT_SECRET is NOT set)' : ''}`,
    '',
    'Next steps (docs/deploy.md has the details):',
  ];
  if (!v.MICROSOFT_CLIENT_ID) {
    lines.push(
      '  1. Register an app in Microsoft Entra ID (portal: App registrations > New registration):',
      `       supported account types: ${accountTypes(tenant)} (MICROSOFT_TENANT=${tenant})`,
      `       redirect URI, platform "Web": ${v.REDIRECT_URI}`,
      '       API permissions, Microsoft Graph, delegated: offline_access, Mail.Send, openid, profile',
      '     then: azd env set MICROSOFT_CLIENT_ID <application-client-id>',
    );
  } else {
    lines.push(`  1. Check that app ${appId} lists exactly this Web redirect URI: ${v.REDIRECT_URI}`);
  }
  if (credential === 'managed_identity') {
    lines.push(
      '  2. Give the app registration a federated credential backed by the managed identity (no secret):',
      `       az ad app federated-credential create --id ${appId} --parameters '${fic}'`,
    );
  } else if (credential === 'secret') {
    lines.push(
      '  2. The client secret is stored in Key Vault (secret microsoft-client-secret) and reaches the app as a',
      '     Key Vault reference. To change it: azd env set MICROSOFT_CLIENT_SECRET <secret>, then azd provision.',
    );
  } else if (credential === 'certificate') {
    lines.push(
      `  2. Import the certificate (PEM with its private key) into the vault as "${v.MICROSOFT_CERTIFICATE_NAME || '<name>'}":`,
      `       az keyvault certificate import --vault-name ${v.AZURE_KEY_VAULT_NAME} -n ${v.MICROSOFT_CERTIFICATE_NAME || '<name>'} -f cert-and-key.pem`,
      '     and upload the public certificate to the app registration (Certificates & secrets > Certificates).',
    );
  } else {
    lines.push(
      '  2. MICROSOFT_CREDENTIAL=none: no client credential is sent (only for public-client registrations).',
    );
  }
  lines.push(
    '  3. Apply the settings: azd provision',
    '  4. Connect the first account and fetch a token:',
    `       KEY=$(az functionapp keys list -g ${v.AZURE_RESOURCE_GROUP} -n ${v.AZURE_FUNCTION_APP_NAME} --query functionKeys.default -o tsv)`,
    `       curl -X PUT "${url}/api/manage/connections/sales-mailbox" -H "x-functions-key: $KEY" \\`,
    `            -H "content-type: application/json" -d '{"provider":"microsoft","scopes":["https://graph.microsoft.com/Mail.Send"]}'`,
    `       curl -X POST "${url}/api/manage/connections/sales-mailbox/link" -H "x-functions-key: $KEY"`,
    '       (open the returned url in a browser as the mailbox owner, sign in and consent)',
    `       curl "${url}/api/connections/sales-mailbox/token" -H "x-functions-key: $KEY"`,
  );
  if (!v.ALERT_EMAIL) {
    lines.push(
      '  Optional: azd env set ALERT_EMAIL you@example.com && azd provision  (mail when a refresh fails)',
    );
  }
  lines.push('');
  return lines;
}

function main() {
  // azd exports the environment (outputs included) to hooks; `azd env get-values` is the fallback.
  let fromAzd;
  const missingInProcess = REQUIRED_OUTPUTS.some((name) => !process.env[name]);
  if (missingInProcess) fromAzd = readAzdEnv();
  const names = [
    ...REQUIRED_OUTPUTS,
    'MICROSOFT_CLIENT_ID',
    'MICROSOFT_TENANT',
    'MICROSOFT_CREDENTIAL',
    'MICROSOFT_CLIENT_SECRET',
    'ALERT_EMAIL',
  ];
  const v = Object.fromEntries(names.map((name) => [name, valueOf(name, fromAzd)]));
  const missing = REQUIRED_OUTPUTS.filter((name) => !v[name]);
  if (missing.length > 0) {
    console.error(
      `postprovision: provisioning outputs missing: ${missing.join(', ')} (did infra/main.bicep deploy?)`,
    );
    process.exitCode = 1;
    return;
  }
  for (const line of nextSteps(v)) console.log(line);
}

try {
  main();
} catch (error) {
  console.error(`postprovision: ${error.message}`);
  if (error.stderr) console.error(error.stderr.trim());
  process.exitCode = 1;
}
