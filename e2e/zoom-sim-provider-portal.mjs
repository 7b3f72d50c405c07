// Zoom's Provider Portal as a carrier's staff walk it, in headless Chromium, signed in to the carrier's
// own Zoom account: Number Management > Provider Portal > Customers > the customer > Import a CSV file
// of numbers (a bad file is refused whole, naming each problem by row and column) > Export > Remove by
// CSV (an assigned number is refused) > the Numbers tab filtered to Returned numbers.
//
//   node e2e/zoom-sim-provider-portal.mjs SIM_URL EMAIL PASSWORD CUSTOMER TRUNK N1,N2,N3 RETURNED ASSIGNED
//
// N1..N3 are imported (N1 removed again); RETURNED is a customer's number marked Returned, ASSIGNED one
// assigned to a user. Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM overrides); PEEREX_E2E_SCREENSHOTS=DIR
// saves screenshots. Exits non-zero with a message naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const [base, email, password, customer, trunk, list, returned, assigned] = process.argv.slice(2);
if (!assigned) {
  console.error('usage: node e2e/zoom-sim-provider-portal.mjs SIM_URL EMAIL PASSWORD CUSTOMER TRUNK N1,N2,N3 RETURNED ASSIGNED');
  process.exit(2);
}
const numbers = list.split(',');
const shots = process.env.PEEREX_E2E_SCREENSHOTS;

const browser = await launchChromium();
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
page.setDefaultTimeout(15_000);

async function shot(name) {
  if (shots) await page.screenshot({ path: join(shots, `provider-portal-${name}.png`), fullPage: true });
}

const csvFile = (text) => ({ name: 'numbers.csv', mimeType: 'text/csv', buffer: Buffer.from(text) });
const table = async () => (await page.textContent('#numbers')) ?? '';

async function upload(label, button, text) {
  await page.getByLabel(label).setInputFiles(csvFile(text));
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.waitForLoadState();
}

try {
  await page.goto(`${base}/signin`);
  await page.getByLabel('Email Address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign In' }).click();
  await page.waitForURL('**/profile');
  step('signed in to the carrier\'s Zoom account');

  // Number Management > Provider Portal > Customers > the customer.
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'Provider Portal' }).click();
  await page.getByRole('heading', { name: 'Provider Portal', level: 1 }).waitFor();
  check((await page.getByRole('tab', { name: 'Customers' }).getAttribute('aria-selected')) === 'true', 'the Customers tab is selected');
  check((await page.locator('#customers tr', { hasText: customer }).textContent()).includes('Active'), `${customer} is an active customer`);
  await page.getByRole('link', { name: customer }).click();
  await page.getByRole('heading', { name: customer, level: 2 }).waitFor();
  step(`opened ${customer}`);

  // Import: a bad file changes nothing and says where each problem is.
  const before = await table();
  await upload('CSV file to import', 'Import', `Phone Number,SIP Trunk Name,Status\n${numbers[0]},no-such-trunk,Normal\n${numbers[1]},${trunk},Sometimes\n`);
  const alert = await page.getByRole('alert').textContent();
  check(alert.includes('Nothing was changed'), 'a bad file is refused whole');
  check(alert.includes('Row 2, SIP Trunk Name'), `the wrong trunk is named by row and column: ${alert}`);
  check(alert.includes('Row 3, Status'), `the wrong status is named by row and column: ${alert}`);
  check((await table()) === before, 'nothing was added');
  await shot('import-refused');
  step('a bad file is refused, naming row and column');

  // Import the good file.
  await upload('CSV file to import', 'Import', `Phone Number,SIP Trunk Name,Status,Billing Reference ID\n${numbers.map((n) => `${n},${trunk},Normal,acct-${n.slice(-4)}`).join('\n')}\n`);
  check((await page.getByRole('status').textContent()).includes(`${numbers.length} numbers added to ${customer}`), 'the page says the numbers were added');
  for (const n of numbers) check((await table()).includes(n), `${n} is listed`);
  await shot('imported');
  step(`imported ${numbers.length} numbers by CSV`);

  // Export: a CSV file of the customer's numbers.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export' }).click()]);
  const exported = await readFile(await download.path(), 'utf8');
  check(exported.startsWith('Phone Number,Customer Account Name,Customer Account Number,SIP Trunk Name'), 'the export has its header');
  for (const n of [...numbers, returned, assigned]) check(exported.includes(n), `the export lists ${n}`);
  check(exported.includes(`${numbers[0]},${customer},`), 'the export names the customer');
  step(`exported ${download.suggestedFilename()}`);

  // Remove: an assigned number is refused (and nothing is removed); then one number is removed.
  await upload('CSV file of numbers to remove', 'Remove', `Phone Number\n${numbers[0]}\n${assigned}\n`);
  check((await page.getByRole('alert').textContent()).includes('Row 3, Phone Number: Phone number is assigned'), 'an assigned number is refused');
  check((await table()).includes(numbers[0]), 'nothing was removed');
  await upload('CSV file of numbers to remove', 'Remove', `Phone Number\n${numbers[0]}\n`);
  check((await page.getByRole('status').textContent()).includes(`1 number removed from ${customer}`), 'the page says the number was removed');
  check(!(await table()).includes(numbers[0]), `${numbers[0]} is gone`);
  await shot('removed');
  step('removed a number by CSV; an assigned one is refused');

  // Numbers tab: every customer's numbers, filtered to the Returned ones.
  await page.getByRole('tab', { name: 'Numbers' }).click();
  await page.getByLabel('Number Pool Status').selectOption({ label: 'Returned' });
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL('**pool_status=returned**');
  const rows = await page.locator('#numbers tbody tr').allTextContents();
  check(rows.length === 1 && rows[0].includes(returned) && rows[0].includes('Returned'), `only ${returned} is Returned: ${rows}`);
  await shot('numbers-returned');
  step('the Numbers tab shows the Returned number');

  console.log('all checks passed');
  await browser.close();
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : `FAIL: ${e.stack || e}`);
  console.error(`(at ${page.url()})`);
  await browser.close();
  process.exit(1);
}
