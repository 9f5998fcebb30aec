/**
 * Summarises Stryker's JSON report (mutation-testing-report-schema) as Markdown: score per module and per file,
 * and every surviving or uncovered mutant with its place and replacement.
 * Usage: node tools/mutationSummary.ts [docs/mutation/mutation.json]
 * Writes docs/mutation/scores.md and docs/mutation/survivors.md next to the report.
 * Score = (killed + timed out) / (killed + timed out + survived + no coverage), as Stryker computes it.
 * Survivors listed in docs/mutation/equivalents.md (with the reason no behaviour can tell them apart) are shown
 * apart; the "without equivalents" score leaves them out of the denominator, as Stryker does for mutants
 * disabled by a `// Stryker disable` comment.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface Mutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}
interface Report {
  files: Record<string, { mutants: Mutant[] }>;
}

const file = process.argv[2] ?? 'docs/mutation/mutation.json';
const dir = dirname(file);
const report = JSON.parse(readFileSync(file, 'utf8')) as Report;

const norm = (s: string) =>
  s.replace(/`/g, '').replace(/\\\|/g, '|').replace(/\s+/g, ' ').trim().slice(0, 60);

// equivalents.md rows: | shared/x.ts:LINE | Mutator | `replacement` | reason |. A row claims a surviving (or
// unreachable, so uncovered) mutant at that place with that mutator: by replacement first, then any left over.
interface Claim {
  place: string;
  mutator: string;
  replacement: string;
  used: boolean;
}
const equivalentsPath = join(dir, 'equivalents.md');
const claims: Claim[] = [];
if (existsSync(equivalentsPath))
  for (const line of readFileSync(equivalentsPath, 'utf8').split('\n')) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    if (cells.length < 5 || !/^shared\/.+:\d+$/.test(cells[1] ?? '')) continue;
    const mutator = (cells[2] ?? '').replace(/\(.*\)/, '').trim();
    claims.push({ place: cells[1]!, mutator, replacement: norm(cells[3] ?? ''), used: false });
  }
function claim(place: string, mutator: string, replacement: string): boolean {
  const here = claims.filter((c) => !c.used && c.place === place && c.mutator === mutator);
  const r = norm(replacement);
  const found =
    here.find((c) => c.replacement === r) ??
    here.find((c) => c.replacement.includes(r) || r.includes(c.replacement)) ??
    here[0];
  if (found) found.used = true;
  return found !== undefined;
}

type Tally = {
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  equivalent: number;
  ignored: number;
};
const empty = (): Tally => ({ killed: 0, timeout: 0, survived: 0, noCoverage: 0, equivalent: 0, ignored: 0 });
const add = (t: Tally, status: string) => {
  if (status === 'Killed') t.killed++;
  else if (status === 'Timeout') t.timeout++;
  else if (status === 'Survived') t.survived++;
  else if (status === 'NoCoverage') t.noCoverage++;
  else if (status === 'Equivalent') t.equivalent++;
  else t.ignored++;
};
const pct = (num: number, den: number) => (den === 0 ? 'n/a' : `${((100 * num) / den).toFixed(1)} %`);
// Stryker's score counts an equivalent survivor as survived; the second score leaves it out.
const score = (t: Tally) =>
  pct(t.killed + t.timeout, t.killed + t.timeout + t.survived + t.noCoverage + t.equivalent);
const scoreWithout = (t: Tally) =>
  pct(t.killed + t.timeout, t.killed + t.timeout + t.survived + t.noCoverage);
const row = (name: string, t: Tally) =>
  `| ${name} | ${score(t)} | ${scoreWithout(t)} | ${t.killed} | ${t.timeout} | ${t.survived} | ${t.noCoverage} | ${t.equivalent} | ${t.ignored} |`;
const header = [
  '| | score | without listed equivalents | killed | timeout | survived | no coverage | equivalent (listed) | ignored |',
  '|---|---|---|---|---|---|---|---|---|',
];

const modules = new Map<string, Tally>();
const files = new Map<string, Tally>();
const total = empty();
const open: string[] = [];
let matched = 0;
for (const [path, { mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
  const mod = dirname(path);
  const m = modules.get(mod) ?? empty();
  const f = empty();
  for (const mutant of mutants) {
    const place = `${path}:${mutant.location.start.line}`;
    const repl = (mutant.replacement ?? '').replace(/\s+/g, ' ').slice(0, 70).replace(/\|/g, '\\|');
    let status = mutant.status;
    if ((status === 'Survived' || status === 'NoCoverage') && claim(place, mutant.mutatorName, repl)) {
      status = 'Equivalent';
      matched++;
    }
    add(m, status);
    add(f, status);
    add(total, status);
    if (status === 'Survived' || status === 'NoCoverage')
      open.push(`| ${place} | ${mutant.mutatorName} | \`${repl}\` | ${status} |`);
  }
  modules.set(mod, m);
  files.set(path, f);
}
// broker/ and oauth/ are the two targets; shared/ as a whole is the third.
const under = (prefix: string) => {
  const t = empty();
  for (const [path, f] of files)
    if (path.startsWith(prefix)) for (const k of Object.keys(t) as (keyof Tally)[]) t[k] += f[k];
  return t;
};

const note = `Generated by \`node tools/mutationSummary.ts\` from [mutation.json](mutation.json); see [README.md](README.md).`;
const scores = [
  '# Mutation scores',
  '',
  note,
  '',
  '## Targets',
  '',
  ...header,
  row('`shared/broker/` (target ≥ 85 %)', under('shared/broker/')),
  row('`shared/oauth/` (target ≥ 85 %)', under('shared/oauth/')),
  row('**`shared/`** (target ≥ 75 %)', total),
  '',
  '## Per module',
  '',
  ...header,
  ...[...modules].map(([name, t]) => row(`\`${name}/\``, t)),
  '',
  '## Per file',
  '',
  ...header,
  ...[...files].map(([name, t]) => row(`\`${name}\``, t)),
  '',
];
const survivors = [
  '# Surviving and uncovered mutants',
  '',
  note,
  `Survivors listed in [equivalents.md](equivalents.md) (${matched} matched) are not repeated here.`,
  '',
  `## ${open.length} mutants`,
  '',
  '| place | mutator | replacement | status |',
  '|---|---|---|---|',
  ...open,
  '',
];
writeFileSync(join(dir, 'scores.md'), scores.join('\n'));
writeFileSync(join(dir, 'survivors.md'), survivors.join('\n'));
console.log(scores.slice(4, 11).join('\n'));
for (const c of claims.filter((c) => !c.used))
  console.log(
    `equivalents.md row matches no surviving mutant (stale?): ${c.place} ${c.mutator} ${c.replacement}`,
  );
