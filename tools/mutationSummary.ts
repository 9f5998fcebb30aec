/**
 * Summarises Stryker's JSON report (mutation-testing-report-schema) as Markdown: score per module and per file,
 * and every surviving or uncovered mutant with its place and replacement.
 * Usage: node tools/mutationSummary.ts [docs/mutation/mutation.json]
 * Score = (killed + timed out) / (killed + timed out + survived + no coverage), as Stryker computes it.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';

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
const report = JSON.parse(readFileSync(file, 'utf8')) as Report;

type Tally = { killed: number; timeout: number; survived: number; noCoverage: number; ignored: number };
const empty = (): Tally => ({ killed: 0, timeout: 0, survived: 0, noCoverage: 0, ignored: 0 });
const add = (t: Tally, status: string) => {
  if (status === 'Killed') t.killed++;
  else if (status === 'Timeout') t.timeout++;
  else if (status === 'Survived') t.survived++;
  else if (status === 'NoCoverage') t.noCoverage++;
  else t.ignored++;
};
const score = (t: Tally) => {
  const valid = t.killed + t.timeout + t.survived + t.noCoverage;
  return valid === 0 ? 'n/a' : `${((100 * (t.killed + t.timeout)) / valid).toFixed(1)} %`;
};
const row = (name: string, t: Tally) =>
  `| ${name} | ${score(t)} | ${t.killed} | ${t.timeout} | ${t.survived} | ${t.noCoverage} | ${t.ignored} |`;
const header = [
  '| | score | killed | timeout | survived | no coverage | ignored |',
  '|---|---|---|---|---|---|---|',
];

const modules = new Map<string, Tally>();
const files = new Map<string, Tally>();
const total = empty();
const open: string[] = [];
for (const [path, { mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
  const mod = dirname(path);
  const m = modules.get(mod) ?? empty();
  const f = empty();
  for (const mutant of mutants) {
    add(m, mutant.status);
    add(f, mutant.status);
    add(total, mutant.status);
    if (mutant.status === 'Survived' || mutant.status === 'NoCoverage') {
      const repl = (mutant.replacement ?? '').replace(/\s+/g, ' ').slice(0, 70).replace(/\|/g, '\\|');
      open.push(
        `| ${path}:${mutant.location.start.line} | ${mutant.mutatorName} | \`${repl}\` | ${mutant.status} |`,
      );
    }
  }
  modules.set(mod, m);
  files.set(path, f);
}

const out = [
  '### Per module',
  '',
  ...header,
  ...[...modules].map(([name, t]) => row(`\`${name}/\``, t)),
  row('**all mutated files**', total),
  '',
  '### Per file',
  '',
  ...header,
  ...[...files].map(([name, t]) => row(`\`${name}\``, t)),
  '',
  `### Surviving and uncovered mutants (${open.length})`,
  '',
  '| place | mutator | replacement | status |',
  '|---|---|---|---|',
  ...open,
];
console.log(out.join('\n'));
