// The Bicep app settings must match what the app reads (SETTINGS in shared/config.ts), and the template must keep
// the Flex / secret-handling rules from docs/deploy.md. Parses the Bicep text; tools/bicep.sh compiles it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SETTINGS, type SettingName } from '../../shared/config.ts';
import { NOTIFY_ENV } from '../../shared/notify/settings.ts';
import {
  appSettingsOf,
  moduleRefs,
  params,
  readBicepFiles,
  resourceBodies,
  variableText,
  type BicepFile,
} from './bicepText.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const infra = join(root, 'infra');
const SITE_MODULE = 'infra/modules/functionapp.bicep';

/** Settings the host itself needs; everything else must be a broker setting from SETTINGS. */
const PLATFORM_SETTING = [/^AzureWebJobsStorage__[A-Za-z]+$/, /^APPLICATIONINSIGHTS_[A-Z_]+$/];
/** Replaced by functionAppConfig on Flex Consumption, or meaningless there. */
const FORBIDDEN_ON_FLEX = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_WORKER_RUNTIME_VERSION',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_NODE_DEFAULT_VERSION',
  'SCM_DO_BUILD_DURING_DEPLOYMENT',
  'ENABLE_ORYX_BUILD',
];
const KEY_VAULT_REFERENCE = /^'@Microsoft\.KeyVault\(SecretUri=\$\{(\w+)\}\)'$/;

const files = readBicepFiles(root, infra);
const byPath = (path: string): BicepFile => {
  const file = files.find((f) => f.path === path);
  assert.ok(file, `${path} not found`);
  return file;
};
const main = byPath('infra/main.bicep');
const site = byPath(SITE_MODULE);
const settings = appSettingsOf(site.code).settings;
const names = settings.map((s) => s.name);
const isPlatform = (name: string) => PLATFORM_SETTING.some((re) => re.test(name));
const isBrokerSetting = (name: string): name is SettingName => Object.hasOwn(SETTINGS, name);

/** `name: value` of one property inside a module call's params block in main.bicep. */
function moduleParam(moduleSymbol: string, param: string): string | undefined {
  const start = main.code.search(new RegExp(`^module\\s+${moduleSymbol}\\s`, 'm'));
  if (start === -1) return undefined;
  const end = main.code.indexOf('\n}', start);
  const block = main.code.slice(start, end);
  return new RegExp(`^\\s+${param}:\\s*(.+)$`, 'm').exec(block)?.[1]?.trim();
}

void describe('infra parity with shared/config.ts SETTINGS', () => {
  void it('parses the app settings from the site module that main.bicep actually deploys', () => {
    const wired = moduleRefs(main.code).map((m) => normalize(join('infra', m.path)).split('\\').join('/'));
    assert.ok(
      wired.includes(SITE_MODULE),
      `main.bicep does not deploy ${SITE_MODULE}; modules: ${wired.join(', ')}`,
    );
    for (const path of wired) assert.ok(existsSync(join(root, path)), `module ${path} does not exist`);
    // Exactly one place defines settings: no inline siteConfig.appSettings and no second appsettings resource.
    for (const file of files) {
      assert.doesNotMatch(file.code, /\bappSettings\s*:/, `${file.path} sets siteConfig.appSettings`);
      if (file !== site) {
        const configs = resourceBodies(file.code, 'Microsoft.Web/sites/config');
        assert.equal(configs.length, 0, `${file.path} declares a Microsoft.Web/sites/config resource`);
      }
    }
    assert.ok(settings.length >= 10, `only ${settings.length} settings parsed`);
    assert.equal(new Set(names).size, names.length, 'a setting is defined twice');
  });

  void it('sets every setting the app requires in Azure', () => {
    const required = Object.entries(SETTINGS)
      .filter(([, s]) => s.requiredInAzure)
      .map(([name]) => name);
    const missing = required.filter((name) => !names.includes(name));
    assert.deepEqual(missing, [], `required settings missing from ${SITE_MODULE}`);
  });

  void it('sets nothing the app does not read, except the host platform settings', () => {
    const unknown = names.filter((name) => !isBrokerSetting(name) && !isPlatform(name));
    assert.deepEqual(unknown, [], 'settings neither in SETTINGS nor platform settings');
  });

  void it('passes secrets only as Key Vault references to secrets the keyvault module created', () => {
    const secrets = settings.filter((s) => isBrokerSetting(s.name) && SETTINGS[s.name].secret);
    assert.ok(
      secrets.some((s) => s.name === 'BROKER_KEYS'),
      'BROKER_KEYS is not set',
    );
    for (const s of secrets) {
      const ref = KEY_VAULT_REFERENCE.exec(s.value);
      assert.ok(ref, `${s.name} is not a Key Vault reference: ${s.value}`);
      const source = moduleParam('functionApp', ref[1] ?? '');
      assert.match(
        source ?? '',
        /\bkeyVault\.outputs\.\w+/,
        `${s.name}: ${ref[1]} is not fed from keyVault outputs`,
      );
    }
    // References resolve as the user-assigned identity, the one the app runs as.
    const kvIdentity = /^\s+keyVaultReferenceIdentity:\s*(\w+)\s*$/m.exec(site.code)?.[1];
    assert.ok(kvIdentity, 'keyVaultReferenceIdentity is not set');
    assert.match(
      site.code,
      new RegExp(`'\\$\\{${kvIdentity}\\}':\\s*\\{\\}`),
      'reference identity is not the app identity',
    );
  });

  void it('sets no plain AzureWebJobsStorage and none of the settings Flex Consumption replaces', () => {
    assert.ok(!names.includes('AzureWebJobsStorage'), 'plain AzureWebJobsStorage is set');
    for (const file of files) {
      assert.doesNotMatch(
        file.code,
        /['\s]AzureWebJobsStorage'?\s*:/,
        `${file.path} sets plain AzureWebJobsStorage`,
      );
      for (const name of FORBIDDEN_ON_FLEX) {
        assert.ok(!file.code.includes(name), `${file.path} mentions ${name} outside comments`);
      }
    }
    const storage = Object.fromEntries(settings.map((s) => [s.name, s.value]));
    assert.equal(storage.AzureWebJobsStorage__credential, "'managedidentity'");
    assert.match(storage.AzureWebJobsStorage__clientId ?? '', /^\w+$/);
  });

  void it('keeps purge protection true-or-omitted, never false', () => {
    const vaults = files.flatMap((f) =>
      resourceBodies(f.code, 'Microsoft.KeyVault/vaults').map((r) => ({ file: f.path, body: r.body })),
    );
    const uses = vaults.flatMap((v) =>
      [...v.body.matchAll(/^\s+enablePurgeProtection:\s*(.+)$/gm)].map((m) => ({
        file: v.file,
        value: m[1]!.trim(),
      })),
    );
    assert.ok(uses.length >= 1, 'no enablePurgeProtection found on a vault');
    for (const file of files) {
      assert.doesNotMatch(
        file.code,
        /PurgeProtection\w*:\s*false\b/i,
        `${file.path} passes purge protection false`,
      );
    }
    for (const use of uses) {
      assert.match(
        use.value,
        /^(true|\w+ \? true : null)$/,
        `${use.file}: enablePurgeProtection: ${use.value}`,
      );
    }
  });

  void it('uses no registry modules, template specs or extensions (CI compiles offline)', () => {
    for (const file of files) {
      assert.doesNotMatch(file.code, /'(br|ts)(\/[\w-]+)?:/, `${file.path} references a registry artifact`);
      assert.doesNotMatch(file.code, /^\s*extension\s/m, `${file.path} declares an extension`);
      for (const m of moduleRefs(file.code)) assert.match(m.path, /^(\.\.?\/)?[\w./-]+\.bicep$/, m.path);
    }
    const config = readFileSync(join(infra, 'bicepconfig.json'), 'utf8');
    assert.doesNotMatch(config, /br:|"extensions"/, 'bicepconfig.json points at a registry');
  });
});

void describe('infra shape (Flex Consumption, identity, azd wiring)', () => {
  void it('is a Flex Consumption Linux app on Node 22, HTTPS only, TLS 1.2, no FTP or basic publishing auth', () => {
    assert.match(site.code, /name: 'FC1'\s+tier: 'FlexConsumption'/);
    assert.match(site.code, /kind: 'functionapp,linux'/);
    assert.match(site.code, /runtime: \{\s+name: 'node'\s+version: '22'\s+\}/);
    assert.match(site.code, /httpsOnly: true/);
    assert.match(site.code, /minTlsVersion: '1\.2'/);
    assert.match(site.code, /type: 'UserAssignedIdentity'\s+userAssignedIdentityResourceId: identityId/);
    // With `location` (ARM error 51008 without it: Azure/bicep#5531, bicep-types-az#1317 and others).
    const policies = resourceBodies(site.code, 'Microsoft.Web/sites/basicPublishingCredentialsPolicies');
    assert.deepEqual(policies.map((p) => /^\s+name: '(\w+)'/m.exec(p.body)?.[1]).sort(), ['ftp', 'scm']);
    for (const policy of policies) {
      assert.match(policy.body, /^\s+location: location$/m, `${policy.symbol} has no location`);
      assert.match(policy.body, /properties: \{\s+allow: false\s+\}/, `${policy.symbol} allows basic auth`);
    }
  });

  void it('locks storage and monitoring to Entra auth', () => {
    assert.match(byPath('infra/modules/storage.bicep').code, /allowSharedKeyAccess: false/);
    const monitoring = byPath('infra/modules/monitoring.bicep').code;
    assert.match(monitoring, /DisableLocalAuth: true/);
    assert.match(monitoring, /disableLocalAuth: true/);
    const auth = settings.find((s) => s.name === 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING');
    assert.equal(auth?.value, "'ClientId=${identityClientId};Authorization=AAD'");
  });

  void it('grants the identity exactly the data roles the host and the broker need, with deterministic names', () => {
    const rbac = byPath('infra/modules/rbac.bicep').code;
    for (const role of [
      'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', // Storage Blob Data Owner
      '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3', // Storage Table Data Contributor
      'b86a8fe4-44ce-4948-aee5-eccb2c155cd7', // Key Vault Secrets Officer
      '3913510d-42f4-4e42-8a64-420c390055eb', // Monitoring Metrics Publisher
      // The notification outbox: Create Queue (queues/write) and Update Message (messages/write) are in no
      // narrower built-in queue role (learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage).
      '974c5e8b-45b9-4653-ba55-5f855dd0fb88', // Storage Queue Data Contributor
    ]) {
      assert.ok(rbac.includes(`'${role}'`), `role ${role} missing`);
    }
    const assignments = resourceBodies(rbac, 'Microsoft.Authorization/roleAssignments');
    assert.equal(assignments.length, 6);
    const queue = assignments.find((a) => a.body.includes('roles.storageQueueDataContributor)'));
    assert.ok(queue, 'no assignment of Storage Queue Data Contributor');
    assert.match(queue.body, /^\s+scope: storage$/m, 'queue role not on the storage account');
    assert.match(queue.body, /^\s+principalId: identityPrincipalId$/m, 'queue role not for the app identity');
    for (const a of assignments) assert.match(a.body, /^\s+name: guid\(/m, `${a.symbol} has no guid() name`);
  });

  void it('tags the app with the azure.yaml service name and maps every required parameter', () => {
    const yaml = readFileSync(join(root, 'azure.yaml'), 'utf8');
    const service = /^services:\n {2}(\w+):/m.exec(yaml)?.[1];
    assert.equal(service, 'api');
    assert.match(main.code, new RegExp(`^var serviceName = '${service}'$`, 'm'));
    assert.match(site.code, /'azd-service-name': serviceName/);
    assert.match(yaml, /^ {4}host: function$/m);
    assert.match(yaml, /^ {4}remoteBuild: false$/m);

    const mapped = (
      JSON.parse(readFileSync(join(infra, 'main.parameters.json'), 'utf8')) as {
        parameters: Record<string, { value: string }>;
      }
    ).parameters;
    const declared = params(main.code);
    for (const name of Object.keys(mapped))
      assert.ok(
        declared.some((p) => p.name === name),
        `unknown param ${name}`,
      );
    for (const p of declared.filter((d) => !d.hasDefault))
      assert.ok(p.name in mapped, `param ${p.name} is not mapped`);
    assert.equal(mapped.environmentName?.value, '${AZURE_ENV_NAME}');
    assert.equal(mapped.location?.value, '${AZURE_LOCATION}');
    assert.equal(mapped.principalId?.value, '${AZURE_PRINCIPAL_ID}');
    assert.equal(mapped.brokerKeys?.value, '${BROKER_KEYS}');
  });

  void it('outputs the redirect URI the app builds (BROKER_PUBLIC_BASE_URL + /api/callback)', () => {
    const base = settings.find((s) => s.name === 'BROKER_PUBLIC_BASE_URL');
    assert.equal(base?.value, 'publicBaseUrl');
    assert.match(site.code, /^var publicBaseUrl = 'https:\/\/\$\{site\.properties\.defaultHostName\}'$/m);
    assert.match(
      main.code,
      /^output REDIRECT_URI string = '\$\{functionApp\.outputs\.publicBaseUrl\}\/api\/callback'$/m,
    );
  });
});

void describe('both network variants (VNET_ENABLED unset/false and true)', () => {
  const network = byPath('infra/modules/network.bicep');
  const storage = byPath('infra/modules/storage.bicep');
  const vault = byPath('infra/modules/keyvault.bicep');

  void it('wires VNET_ENABLED to the network module, the private-only switches and the app subnet', () => {
    assert.ok(params(main.code).some((p) => p.name === 'vnetEnabled' && p.hasDefault));
    const mappedParams = (
      JSON.parse(readFileSync(join(infra, 'main.parameters.json'), 'utf8')) as {
        parameters: Record<string, { value: string }>;
      }
    ).parameters;
    assert.equal(mappedParams.vnetEnabled?.value, '${VNET_ENABLED}');
    assert.match(main.code, /^module network 'modules\/network\.bicep' = if \(vnetEnabled\) \{$/m);
    assert.equal(moduleParam('storage', 'privateOnly'), 'vnetEnabled');
    assert.equal(moduleParam('keyVault', 'privateOnly'), 'vnetEnabled');
    assert.equal(
      moduleParam('functionApp', 'virtualNetworkSubnetId'),
      "vnetEnabled ? network!.outputs.appSubnetId : ''",
    );
    assert.match(
      site.code,
      /virtualNetworkSubnetId: empty\(virtualNetworkSubnetId\) \? null : virtualNetworkSubnetId/,
    );
    for (const file of [storage, vault]) {
      assert.match(file.code, /publicNetworkAccess: privateOnly \? 'Disabled' : 'Enabled'/, file.path);
    }
    assert.match(storage.code, /privateOnly\s+\?\s+\{\s+bypass: 'None'\s+defaultAction: 'Deny'/);
    assert.match(vault.code, /defaultAction: privateOnly \? 'Deny' : 'Allow'/);
  });

  void it('gives every storage service the host is configured with, and Key Vault, a private endpoint and zone', () => {
    const services = names
      .map((n) => /^AzureWebJobsStorage__(\w+)ServiceUri$/.exec(n)?.[1])
      .filter((s): s is string => s !== undefined);
    assert.ok(services.includes('blob'), `storage services: ${services.join(', ')}`);
    const groups = [...network.code.matchAll(/^\s+groupId: '(\w+)'$/gm)].map((m) => m[1]);
    for (const service of [...services, 'vault']) {
      assert.ok(
        groups.includes(service),
        `no private endpoint for ${service} (endpoints: ${groups.join(', ')})`,
      );
    }
    assert.match(network.code, /privatelink\.blob\.\$\{environment\(\)\.suffixes\.storage\}/);
    assert.match(network.code, /privatelink\.table\.\$\{environment\(\)\.suffixes\.storage\}/);
    assert.match(network.code, /privatelink\.queue\.\$\{environment\(\)\.suffixes\.storage\}/);
    assert.match(
      network.code,
      /replace\(environment\(\)\.suffixes\.keyvaultDns, '\.vault\.', '\.vaultcore\.'\)/,
    );
    assert.match(network.code, /serviceName: 'Microsoft\.App\/environments'/);
    // One zone, one VNet link, one endpoint and one zone group per entry of `endpoints`.
    for (const type of [
      'privateDnsZones',
      'privateDnsZones/virtualNetworkLinks',
      'privateEndpoints',
      'privateEndpoints/privateDnsZoneGroups',
    ]) {
      const loop = new RegExp(
        `^resource \\w+ 'Microsoft\\.Network/${type}@[^']+' = \\[\\s+for (\\(e, i\\)|e) in endpoints:`,
        'm',
      );
      assert.match(network.code, loop, `${type} is not created for every endpoint`);
    }
  });

  void it('keeps one parameter file per variant for tools/bicep.sh (public and private)', () => {
    const variants = ['public', 'private'].map((v) =>
      readFileSync(join(infra, 'variants', `${v}.bicepparam`), 'utf8'),
    );
    assert.match(variants[0] ?? '', /^param vnetEnabled = false$/m);
    assert.match(variants[1] ?? '', /^param vnetEnabled = true$/m);
    for (const v of variants) assert.match(v, /^using '\.\.\/main\.bicep'$/m);
  });

  void it('keeps the location list and the preprovision check on the same Flex regions', () => {
    const allowed =
      /@allowed\(\[([^\]]*)\]\)\s*@metadata\(\{ azd: \{ type: 'location' \} \}\)\s*param location/.exec(
        main.code,
      )?.[1];
    assert.ok(allowed, 'location has no @allowed list');
    const listed = [...allowed.matchAll(/'([a-z0-9]+)'/g)].map((m) => m[1]);
    const regions = JSON.parse(readFileSync(join(infra, 'flex-regions.json'), 'utf8')) as string[];
    assert.deepEqual(listed, regions);
    assert.ok(regions.length >= 20);
  });
});

void describe('monitoring sees what fails silently', () => {
  const alerts = byPath('infra/modules/alerts.bicep');
  const hostJson = JSON.parse(readFileSync(join(root, 'host.json'), 'utf8')) as {
    logging: {
      logLevel: Record<string, string>;
      applicationInsights: { samplingSettings: { isEnabled: boolean; excludedTypes?: string } };
    };
  };
  const levels = ['Trace', 'Debug', 'Information', 'Warning', 'Error', 'Critical', 'None'];
  const atMost = (category: string, level: string) => {
    const set = hostJson.logging.logLevel[category] ?? hostJson.logging.logLevel.default ?? 'Information';
    return levels.indexOf(set) <= levels.indexOf(level);
  };

  void it('alerts on refresh failures and on a sweep that has not completed, both to the action group', () => {
    const rules = resourceBodies(alerts.code, 'Microsoft.Insights/scheduledQueryRules');
    assert.deepEqual(rules.map((r) => r.symbol).sort(), ['notifyAlert', 'refreshAlert', 'sweepAlert']);
    for (const r of rules) assert.match(r.body, /actionGroup\.id/, `${r.symbol} notifies nobody`);
    const sweep = rules.find((r) => r.symbol === 'sweepAlert')!;
    assert.match(sweep.body, /operator: 'LessThan'\s+threshold: 1/);
    assert.match(main.code, /refreshSchedule: refreshSchedule\s+sweepAlertMinutes: sweepAlertMinutes/);
  });

  void it('counts the timer function the app really registers, in a table sampling never thins', () => {
    const timer = /app\.timer\('(\w+)'/.exec(
      readFileSync(join(root, 'functions', 'refresh.ts'), 'utf8'),
    )?.[1];
    assert.ok(timer);
    assert.match(
      alerts.code,
      new RegExp(`requests\\\\n\\| where operation_Name =~ "${timer}" and success == true`),
    );
    const excluded = (hostJson.logging.applicationInsights.samplingSettings.excludedTypes ?? '').split(';');
    for (const type of ['Request', 'Exception', 'Trace']) {
      assert.ok(excluded.includes(type), `host.json samples ${type} telemetry`);
    }
    // Executions appear in `requests` only when Host.Results logs at Information (Warning keeps failures only).
    assert.ok(atMost('Host.Results', 'Information'), 'Host.Results hides successful executions');
  });

  void it('counts failure events the broker really logs, at a level host.json keeps', () => {
    const query = /var query = '''([\s\S]*?)'''/.exec(alerts.code)?.[1] ?? '';
    const events = [...query.matchAll(/startswith "([\w.]+)"/g)].map((m) => m[1] ?? '');
    assert.deepEqual(events.sort(), ['refresh.failed', 'refresh.needs_reauth']);
    const source = readFileSync(join(root, 'shared', 'broker', 'failures.ts'), 'utf8');
    for (const e of events) assert.ok(source.includes(`'${e}'`), `the broker never logs ${e}`);
    assert.ok(atMost('Function', 'Warning'), "host.json drops the broker's warnings");
    assert.ok(
      atMost('Function', 'Information'),
      "host.json drops the broker's information records (sweep counts)",
    );
  });

  void it('alerts on notifications the broker gives up or cannot queue, logged as errors', () => {
    const query = /var notifyQuery = '''([\s\S]*?)'''/.exec(alerts.code)?.[1] ?? '';
    const events = [...query.matchAll(/startswith "([\w.]+)"/g)].map((m) => m[1] ?? '');
    assert.ok(events.includes('notify.gave_up'), `notification alert counts ${events.join(', ')}`);
    const source = readFileSync(join(root, 'shared', 'notify', 'notifier.ts'), 'utf8');
    for (const e of events) {
      // Error level: never filtered by host.json, and Trace is excluded from sampling (test above).
      assert.match(
        source,
        new RegExp(`\\.error\\(\\s*'${e.replace('.', '\\.')}'`),
        `the broker never logs ${e} as an error`,
      );
    }
    const rule = resourceBodies(alerts.code, 'Microsoft.Insights/scheduledQueryRules').find(
      (r) => r.symbol === 'notifyAlert',
    );
    assert.match(rule?.body ?? '', /query: notifyQuery/);
    assert.match(rule?.body ?? '', /operator: 'GreaterThan'\s+threshold: 0/);
    assert.ok(atMost('Function', 'Error'), "host.json drops the broker's errors");
  });
});

void describe('notifications (README "Notifications") in both network variants', () => {
  const mapped = (
    JSON.parse(readFileSync(join(infra, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    }
  ).parameters;
  const valueOf = (name: string) => settings.find((s) => s.name === name)?.value;
  const variableOf = (name: string) => settings.find((s) => s.name === name)?.variable;
  const storage = byPath('infra/modules/storage.bicep');
  const vault = byPath('infra/modules/keyvault.bicep');
  /** Notification settings the app reads but the template leaves to their defaults, and why. */
  const NOT_DEPLOYED: Record<string, string> = {
    BROKER_GRAPH_URL: 'defaults to https://graph.microsoft.com; set only to reach a Graph double in tests',
  };
  /** azd env value -> main.bicep parameter -> app setting, each optional. */
  const OPTIONAL = [
    { setting: 'BROKER_WEBHOOK_URL', param: 'brokerWebhookUrl' },
    { setting: 'BROKER_WEBHOOK_SECRET', param: 'brokerWebhookSecret' },
    { setting: 'BROKER_NOTIFY_CONNECTION', param: 'brokerNotifyConnection' },
    { setting: 'BROKER_NOTIFY_TO', param: 'brokerNotifyTo' },
  ];

  void it('sets every notification setting the app reads, or says why not', () => {
    const missing = Object.keys(NOTIFY_ENV).filter((n) => !names.includes(n) && !(n in NOT_DEPLOYED));
    assert.deepEqual(missing, [], 'notification settings the template cannot set');
    for (const n of Object.keys(NOT_DEPLOYED))
      assert.ok(!names.includes(n), `${n} is listed as not deployed`);
  });

  void it("points the outbox at the host storage account's queue service and the queue it creates", () => {
    assert.equal(valueOf('AzureWebJobsStorage__queueServiceUri'), 'storageQueueEndpoint');
    assert.equal(moduleParam('functionApp', 'storageQueueEndpoint'), 'storage.outputs.queueEndpoint');
    assert.match(
      storage.code,
      /^output queueEndpoint string = storage\.properties\.primaryEndpoints\.queue$/m,
    );
    // Always set (not conditional): the platform variable, not a per-feature one.
    assert.equal(variableOf('AzureWebJobsStorage__queueServiceUri'), 'platformSettings');
    assert.equal(valueOf('BROKER_NOTIFY_QUEUE'), 'notifyQueueName');
    assert.equal(moduleParam('functionApp', 'notifyQueueName'), 'storage.outputs.notifyQueueName');
    assert.match(storage.code, /^output notifyQueueName string = notifyQueue\.name$/m);
    const queue = resourceBodies(storage.code, 'Microsoft.Storage/storageAccounts/queueServices/queues');
    assert.equal(queue.length, 1);
    assert.match(queue[0]!.body, /^\s+name: notifyQueueName$/m);
    // The default name is one the app accepts, and the one it would pick by itself.
    const name = /^param notifyQueueName string = '([^']+)'$/m.exec(storage.code)?.[1];
    assert.equal(NOTIFY_ENV.BROKER_NOTIFY_QUEUE.parse(name), name);
    assert.equal(NOTIFY_ENV.BROKER_NOTIFY_QUEUE.parse(undefined), name);
  });

  void it('maps each optional setting from the azd environment, empty by default, set only when given', () => {
    const declared = params(main.code);
    for (const { setting, param } of OPTIONAL) {
      assert.equal(mapped[param]?.value, `\${${setting}}`, `${param} is not mapped to \${${setting}}`);
      assert.ok(
        declared.some((p) => p.name === param && p.hasDefault),
        `${param} has no default (a first azd up would ask)`,
      );
      assert.match(main.code, new RegExp(`^param ${param} string = ''$`, 'm'), `${param} default is not ''`);
      // Both ways: an empty parameter leaves the setting out, a given one sets it.
      const variable = variableOf(setting);
      assert.ok(variable, `${setting} is not an app setting`);
      const text = variableText(site.code, variable) ?? '';
      assert.match(
        text,
        new RegExp(
          `^var ${variable} = empty\\((\\w+)\\)\\s+\\? \\{\\}\\s+: \\{\\s+${setting}: [^\\n]*\\1`,
          'm',
        ),
        `${setting}: not "empty(x) ? {} : { ${setting}: …x… }"`,
      );
      assert.doesNotMatch(
        text,
        /vnet|virtualNetwork|privateOnly/i,
        `${setting} depends on the network variant`,
      );
    }
    for (const plain of ['brokerWebhookUrl', 'brokerNotifyConnection', 'brokerNotifyTo']) {
      assert.equal(moduleParam('functionApp', plain), plain);
    }
  });

  void it('keeps the webhook secret out of app settings and outputs: a Key Vault secret behind a reference', () => {
    assert.match(main.code, /@secure\(\)\s+param brokerWebhookSecret string = ''/);
    assert.equal(moduleParam('keyVault', 'brokerWebhookSecret'), 'brokerWebhookSecret');
    assert.equal(
      moduleParam('functionApp', 'brokerWebhookSecretUri'),
      "empty(brokerWebhookSecret) ? '' : keyVault.outputs.brokerWebhookSecretUri",
    );
    assert.equal(
      valueOf('BROKER_WEBHOOK_SECRET'),
      "'@Microsoft.KeyVault(SecretUri=${brokerWebhookSecretUri})'",
    );
    assert.match(vault.code, /@secure\(\)\s+param brokerWebhookSecret string = ''/);
    const secret = resourceBodies(vault.code, 'Microsoft.KeyVault/vaults/secrets').find((r) =>
      /value: brokerWebhookSecret$/m.test(r.body),
    );
    assert.ok(secret, 'no Key Vault secret holds brokerWebhookSecret');
    assert.match(vault.code, /^resource webhookSecret '[^']+' = if \(!empty\(brokerWebhookSecret\)\) \{$/m);
    assert.match(
      vault.code,
      /^output brokerWebhookSecretUri string = '\$\{vault\.properties\.vaultUri\}secrets\/\$\{webhookSecretName\}'$/m,
    );
    for (const file of files) {
      assert.doesNotMatch(
        file.code,
        /^output .*brokerWebhookSecret\b(?!Uri)/m,
        `${file.path} outputs the secret`,
      );
    }
  });
});
