// The operator portal's import, as a person does it, in headless Chromium:
// sign in, upload a CSV with two bad rows (one not E.164, one duplicate), Preview and Import and see
// both reasons with nothing imported, fix the file, import it, search by prefix, open a number and
// see its audit trail.
//
//   node e2e/operator-import.mjs BASE_URL EMAIL PASSWORD
//
// Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM overrides); never downloads a browser. With
// PEEREX_E2E_SCREENSHOTS=DIR it saves screenshots of the key pages there. Exits non-zero with a
// message naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, email, password] = process.argv.slice(2);
if (!base || !email || !password) {
  console.error('usage: node e2e/operator-import.mjs BASE_URL EMAIL PASSWORD');
  process.exit(2);
}
const shots = process.env.PEEREX_E2E_SCREENSHOTS;

// A block of numbers of its own, so the script can run again against the same server.
const block = `+1555${100 + Math.floor(Math.random() * 900)}`;
const n = (i) => `${block}${String(i).padStart(4, '0')}`;
const badCsv = [
  'number,tags,region,note',
  `${n(1)},e2e,US-NY,first`,
  `${n(2).slice(1)},e2e,US-NY,missing plus`, // row 3: not E.164
  `${n(1)},e2e,US-NY,again`, // row 4: duplicate of row 2
  `${n(3)},e2e,US-NY,`,
].join('\n');
const goodCsv = ['number,tags,region,note', `${n(1)},e2e,US-NY,first`, `${n(2)},e2e,US-NY,fixed`, `${n(3)},e2e,US-NY,`].join('\n');

const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(15_000);

async function shot(name) {
  if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** Chooses `csv` in the file field and presses the button `action` (preview or import). */
async function submitImport(csv, action) {
  await page.setInputFiles('input[name="file"]', { name: 'numbers.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/operator/import') && r.request().method() === 'POST'),
    page.click(`button[name="action"][value="${action}"]`),
  ]);
  await page.waitForLoadState('domcontentloaded');
  return (await page.locator('#outcome').textContent()) ?? '';
}

/** The reasons in the row-error table, by row. */
async function rowErrors() {
  return page.$$eval('table.row-errors tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
}

try {
  // Signing in from a deep link comes back to it.
  await page.goto(`${base}/operator/import`);
  check(page.url().includes('/operator/login'), `not sent to the sign-in page: ${page.url()}`);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL('**/operator/import'), page.click('button[type="submit"]')]);
  step('signed in and back on the import page');

  for (const action of ['preview', 'import']) {
    const outcome = await submitImport(badCsv, action);
    const errors = await rowErrors();
    const reason = (row) => errors.find((e) => e[0] === String(row))?.[3] ?? '';
    check(errors.length === 2, `${action}: expected 2 row errors, the page shows ${errors.length}: ${JSON.stringify(errors)}`);
    check(reason(3).includes('not E.164'), `${action}: row 3 should be "not E.164", is ${JSON.stringify(reason(3))}`);
    check(reason(4).includes('duplicate in file (first on row 2)'), `${action}: row 4 should be a duplicate, is ${JSON.stringify(reason(4))}`);
    check(
      action === 'preview' ? /nothing would be imported/.test(outcome) : /Nothing was imported/.test(outcome),
      `${action}: the page should say nothing is imported: ${outcome.trim()}`,
    );
    if (action === 'import') await shot('import-errors');
    step(`${action} of the bad file shows both reasons and imports nothing`);
  }
  await page.goto(`${base}/operator/numbers?prefix=${encodeURIComponent(block)}`);
  check((await page.locator('#results td.num').count()) === 0, 'numbers of the bad file were imported');
  check((await page.textContent('#results')).includes('No numbers match'), 'the empty search should say so');
  step('no number of the bad file is in the inventory');

  await page.goto(`${base}/operator/import`);
  let outcome = await submitImport(goodCsv, 'preview');
  check(outcome.includes('3 numbers would be added'), `preview of the fixed file: ${outcome.trim()}`);
  outcome = await submitImport(goodCsv, 'import');
  check(outcome.includes('Imported 3 numbers'), `import of the fixed file: ${outcome.trim()}`);
  step('the fixed file is imported');

  // Search the way an operator does: type the prefix into the inventory's filter and search.
  await page.click('nav a[href="/operator/numbers"]');
  await page.fill('input[name="prefix"]', block);
  await page.click('form.filters button[type="submit"]');
  await page.waitForFunction(
    (prefix) => {
      const cells = [...document.querySelectorAll('#results td.num')];
      return cells.length === 3 && cells.every((c) => c.textContent.trim().startsWith(prefix));
    },
    block,
  );
  await shot('search');
  step(`the search for ${block} lists the 3 numbers`);

  await Promise.all([page.waitForURL(/\/operator\/numbers\/[0-9a-f-]{36}$/), page.click(`#results a:text-is("${n(1)}")`)]);
  check((await page.textContent('h1')).includes(n(1)), 'the number page shows its number');
  const audit = await page.$$eval('table.audit tbody tr', (rows) => rows.map((r) => r.textContent.replace(/\s+/g, ' ').trim()));
  check(audit.length === 1 && audit[0].includes('imported') && audit[0].includes(email), `the audit trail should show the import by ${email}: ${JSON.stringify(audit)}`);
  await shot('number');
  step('the number page shows the "imported" audit entry');
  console.log('operator-import: all checks passed');
} catch (e) {
  const where = page.url();
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : `FAIL: ${e.stack ?? e}`);
  console.error(`  at ${where}`);
  const dir = shots ?? (await mkdtemp(join(tmpdir(), 'peerex-e2e-')));
  await page.screenshot({ path: join(dir, 'failure.png'), fullPage: true }).then(
    () => console.error(`  screenshot: ${join(dir, 'failure.png')}`),
    () => {},
  );
  process.exitCode = 1;
} finally {
  await browser.close();
}
