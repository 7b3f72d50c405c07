// Releasing numbers with the customer's approval (issue 6), as the customer's admin walks it in
// headless Chromium, through the carrier's customer portal and (simulated) Zoom:
//  portal → Wait for Release → tick both numbers → Release numbers → one released, the assigned one
//  refused with the Unbind message → Zoom → Phone Numbers → Assigned → the number → Unbind →
//  back to the portal → release it again → released.
//
//   node e2e/release-journey.mjs PLATFORM_URL SIM_URL PORTAL_EMAIL PORTAL_PASSWORD ZOOM_EMAIL ZOOM_PASSWORD ASSIGNED_NUMBER OTHER_NUMBER
//
// The platform's job workers must be running (the page refreshes itself while Zoom works). Uses
// Debian's /usr/bin/chromium (PEEREX_CHROMIUM overrides); never downloads a browser. With
// PEEREX_E2E_SCREENSHOTS=DIR it saves screenshots there. Exits non-zero naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { join } from 'node:path';

const [platform, sim, portalEmail, portalPassword, zoomEmail, zoomPassword, assigned, other] = process.argv.slice(2);
if (!other) {
  console.error('usage: node e2e/release-journey.mjs PLATFORM_URL SIM_URL PORTAL_EMAIL PORTAL_PASSWORD ZOOM_EMAIL ZOOM_PASSWORD ASSIGNED_NUMBER OTHER_NUMBER');
  process.exit(2);
}
const shots = process.env.PEEREX_E2E_SCREENSHOTS;
const UNBIND = 'Unassign (Unbind) this number in Zoom, then release it again';

const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(20_000);

async function shot(name) {
  if (shots) await page.screenshot({ path: join(shots, `release-${name}.png`), fullPage: true });
}

const row = (number) => page.locator(`#releases tr[data-number="${number}"]`);

/** Waits until the number's result cell says `text` (the page refreshes itself while Zoom works). */
async function resultSays(number, text) {
  await page.locator(`#releases tr[data-number="${number}"] td.result`, { hasText: text }).waitFor();
}

async function openWaitForRelease() {
  await page.getByRole('link', { name: 'Wait for Release', exact: true }).click();
  await page.waitForURL('**/portal/releases');
  await page.getByRole('heading', { name: 'Wait for Release', level: 1 }).waitFor();
}

try {
  // The customer's admin signs in to the carrier's portal and opens the Wait for Release tab.
  await page.goto(`${platform}/portal/login`);
  await page.getByLabel('E-mail').fill(portalEmail);
  await page.getByLabel('Password').fill(portalPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${platform}/portal`);
  await page.locator('#release-banner', { hasText: '2 numbers wait for your approval to release' }).waitFor();
  step('the portal tells the admin that numbers wait for approval');
  await openWaitForRelease();
  check((await page.textContent('#zoom-checked')).includes('Checked with Zoom at'), 'the page asked Zoom as it loaded');
  check((await row(assigned).textContent()).includes('Assigned to a user'), `${assigned} shows as assigned to a user in Zoom`);
  check((await row(other).textContent()).includes('Unassigned'), `${other} shows as unassigned in Zoom`);
  await shot('waiting');
  step('the Wait for Release tab lists both numbers with what Zoom says of each');

  // Tick both, Release numbers: one released, the assigned one refused with the Unbind message.
  await page.getByLabel(`Release ${assigned}`).check();
  await page.getByLabel(`Release ${other}`).check();
  await page.getByRole('button', { name: 'Release numbers' }).click();
  await page.waitForURL('**/portal/releases');
  await resultSays(other, 'Released');
  await resultSays(assigned, `Not released: ${UNBIND}`);
  check((await page.textContent('#released')).trim() === '1', 'one released');
  check((await page.textContent('#refused')).trim() === '1', 'one not released');
  check(await page.getByRole('button', { name: 'Release numbers' }).isVisible(), 'the refreshed page offers to release the refused number again');
  await shot('results');
  step(`${other} released; ${assigned} refused: "${UNBIND}"`);

  // The admin's numbers: the released one is gone.
  await page.getByRole('link', { name: 'Back to your numbers' }).click();
  await page.waitForURL(`${platform}/portal`);
  const numbers = await page.textContent('#numbers');
  check(numbers.includes(assigned) && !numbers.includes(other), `${other} is gone from the customer's numbers, ${assigned} is still there`);
  step('the released number left the customer');

  // Zoom → Phone Numbers → Assigned → the number → Unbind.
  await page.goto(`${sim}/signin`);
  await page.getByLabel('Email Address').fill(zoomEmail);
  await page.getByLabel('Password').fill(zoomPassword);
  await page.getByRole('button', { name: 'Sign In' }).click();
  await page.waitForURL('**/profile');
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'Phone Numbers', exact: true }).click();
  await page.getByRole('tab', { name: 'Assigned', exact: true }).click();
  await page.waitForURL('**/pbx/phone-numbers?tab=assigned');
  check((await page.textContent('#numbers')).includes(assigned), `${assigned} is listed under Assigned`);
  await page.getByRole('link', { name: assigned }).click();
  await page.getByRole('heading', { name: assigned, level: 1 }).waitFor();
  await shot('zoom-assigned');
  await page.getByRole('button', { name: 'Unbind' }).click();
  await page.getByRole('status').waitFor();
  check((await page.textContent('[role=status]')).includes('is no longer assigned'), 'Zoom says the number is no longer assigned');
  step(`unbound ${assigned} in Zoom`);

  // Back to the portal: release it again; after a refresh it is released.
  await page.goto(`${platform}/portal`);
  await openWaitForRelease();
  check((await row(assigned).textContent()).includes('Unassigned'), `${assigned} now shows as unassigned in Zoom`);
  await page.getByLabel(`Release ${assigned}`).check();
  await page.getByRole('button', { name: 'Release numbers' }).click();
  await page.waitForURL('**/portal/releases');
  await resultSays(assigned, 'Released');
  await page.reload();
  await resultSays(assigned, 'Released');
  check((await page.textContent('#released')).trim() === '2', 'both released');
  check((await page.getByRole('button', { name: 'Release numbers' }).count()) === 0, 'nothing is left to release');
  await shot('released');
  step(`released ${assigned} after Unbind`);

  console.log('all checks passed');
  await browser.close();
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : `FAIL: ${e.stack || e}`);
  console.error(`(at ${page.url()})`);
  await browser.close();
  process.exit(1);
}
