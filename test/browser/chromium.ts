/**
 * Browser test support: Debian's Chromium driven headless by playwright-core, page checks shared by the browser
 * suites (security headers, axe-core accessibility run, CSP violations) and screenshots for the docs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page, type Response } from 'playwright-core';
import { REPO_ROOT } from '../support/devhost.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(REPO_ROOT, 'docs', 'screenshots');

// Without the background-networking flags Chromium phones home (component updates, sync, field trials).
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `launch` (not a persistent context) gives every run its own fresh temporary profile directory. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A fresh context (own cookies, so no IdP session carries over) with a fixed size for stable screenshots. */
export function newContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({
    viewport: { width: 760, height: 640 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
    colorScheme: 'light',
    reducedMotion: 'reduce',
  });
}

export interface WatchedPage {
  page: Page;
  /** The latest non-redirect main-frame document response. */
  lastDocument(): Response;
  /** Every non-redirect main-frame document response so far. */
  documents(): Response[];
  /** Console messages that report a Content-Security-Policy violation. */
  cspViolations(): string[];
}

export async function openPage(context: BrowserContext): Promise<WatchedPage> {
  const page = await context.newPage();
  const docs: Response[] = [];
  const csp: string[] = [];
  page.on('response', (response) => {
    const request = response.request();
    const redirect = response.status() >= 300 && response.status() < 400;
    if (request.resourceType() === 'document' && request.frame() === page.mainFrame() && !redirect) {
      docs.push(response);
    }
  });
  page.on('console', (message) => {
    if (/Content[ -]Security[ -]Policy/i.test(message.text())) csp.push(message.text());
  });
  return {
    page,
    lastDocument() {
      const last = docs.at(-1);
      assert.ok(last, 'no document was loaded');
      return last;
    },
    documents: () => [...docs],
    cspViolations: () => [...csp],
  };
}

/** The headers every page a person sees must carry, from the broker and from the demo IdP alike. */
export async function assertPageHeaders(response: Response): Promise<void> {
  const headers = await response.allHeaders();
  const where = `${response.status()} ${new URL(response.url()).pathname}`;
  assert.match(headers['content-type'] ?? '', /^text\/html; charset=utf-8$/i, where);
  assert.equal(headers['x-content-type-options'], 'nosniff', where);
  assert.equal(headers['referrer-policy'], 'no-referrer', where);
  assert.equal(headers['cache-control'], 'no-store', where);
  const csp = headers['content-security-policy'] ?? '';
  assert.match(csp, /(^|; )default-src 'none'(;|$)/, `${where}: CSP default-src`);
  assert.match(csp, /(^|; )frame-ancestors 'none'(;|$)/, `${where}: CSP frame-ancestors`);
  assert.match(csp, /(^|; )base-uri 'none'(;|$)/, `${where}: CSP base-uri`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|script-src/, `${where}: CSP allows no script`);
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/**
 * Runs axe-core (every rule it enables by default, all impact levels) in light and dark colour schemes and
 * asserts no violation. axe is evaluated through the DevTools protocol rather than injected as a `<script>`: the
 * pages' CSP (rightly) refuses inline scripts, and this way the audit sees the page exactly as a person gets it,
 * with the CSP still enforced.
 */
export async function assertAccessible(page: Page, label: string): Promise<void> {
  const loaded = await page.evaluate('typeof window.axe');
  if (loaded !== 'object') await page.evaluate(AXE_SOURCE);
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    const violations = await page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<unknown> } }).axe;
      const result = (await axe.run(document, { resultTypes: ['violations'] })) as {
        violations: AxeViolation[];
      };
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.map((n) => JSON.stringify(n.target)),
      }));
    });
    assert.deepEqual(violations, [], `${label} (${colorScheme}): accessibility violations`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

/** The page's own stylesheet was applied (i.e. the CSP nonce/hash matched): `main` is laid out as a card. */
export async function assertStyled(page: Page, label: string): Promise<void> {
  const radius = await page.evaluate(() => {
    const main = document.querySelector('main');
    return main ? getComputedStyle(main).borderTopLeftRadius : '';
  });
  assert.notEqual(radius, '', `${label}: has a <main>`);
  assert.notEqual(radius, '0px', `${label}: its stylesheet was blocked or not applied`);
}

/** An invocation id standing in for the real one, which differs on every run, so the committed PNGs do not. */
export const EXAMPLE_REFERENCE = '5b0c7a8e-3f1d-4c2a-9e6b-7d4f2a1c8e90';

/** Full-page PNG under docs/screenshots (stable names; README and docs/demo.md embed them). */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.evaluate((reference) => {
    document.querySelectorAll('code.ref').forEach((el) => (el.textContent = reference));
  }, EXAMPLE_REFERENCE);
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, name), fullPage: true, animations: 'disabled' });
}

/** All the checks for one page a person sees; returns its HTML. */
export async function checkPage(
  watched: WatchedPage,
  label: string,
  screenshotName?: string,
): Promise<{ response: Response; html: string }> {
  const { page } = watched;
  await page.waitForLoadState('load');
  const response = watched.lastDocument();
  await assertPageHeaders(response);
  await assertStyled(page, label);
  const html = await page.content();
  await assertAccessible(page, label);
  assert.deepEqual(watched.cspViolations(), [], `${label}: CSP violations in the console`);
  if (screenshotName) await screenshot(page, screenshotName);
  return { response, html };
}
