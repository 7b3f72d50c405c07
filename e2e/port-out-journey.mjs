// A port-out as the carrier's operator and the customer's admin see it, in headless Chromium:
//  operator → Releases → record a port-out of two numbers to another carrier, due today → the
//  release page: one number removed from Zoom, the other (assigned to a user in Zoom) blocked, with
//  what blocks it and a button to try again → the customer's portal → Wait for Release: both numbers
//  with the reason ("Ported out to <carrier> on <date>"), nothing to tick.
//
//   node e2e/port-out-journey.mjs PLATFORM_URL OPERATOR_EMAIL OPERATOR_PASSWORD PORTAL_EMAIL PORTAL_PASSWORD CUSTOMER_OPTION DUE_DATE ASSIGNED_NUMBER OTHER_NUMBER
//
// The platform's job workers must be running. Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM
// overrides); never downloads a browser. With PEEREX_E2E_SCREENSHOTS=DIR it saves screenshots there.
// Exits non-zero naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { join } from 'node:path';

const [platform, opEmail, opPassword, portalEmail, portalPassword, customer, due, assigned, other] = process.argv.slice(2);
if (!other) {
  console.error('usage: node e2e/port-out-journey.mjs PLATFORM_URL OPERATOR_EMAIL OPERATOR_PASSWORD PORTAL_EMAIL PORTAL_PASSWORD CUSTOMER_OPTION DUE_DATE ASSIGNED_NUMBER OTHER_NUMBER');
  process.exit(2);
}
const shots = process.env.PEEREX_E2E_SCREENSHOTS;
const WHY = `Ported out to Other Telco on ${due}`;
const BLOCKED = 'Assigned to a user in Zoom';

const browser = await launchChromium();
const opContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const portalContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
let page = await opContext.newPage();
page.setDefaultTimeout(20_000);

async function shot(name) {
  if (shots) await page.screenshot({ path: join(shots, `port-out-${name}.png`), fullPage: true });
}

const line = (number) => page.locator('#lines tr', { hasText: number });

try {
  // The operator signs in and records the port-out from the Releases page.
  await page.goto(`${platform}/operator/login`);
  await page.getByLabel('E-mail').fill(opEmail);
  await page.getByLabel('Password').fill(opPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${platform}/operator**`);
  await page.getByRole('link', { name: 'Releases', exact: true }).click();
  await page.waitForURL('**/operator/releases');
  const form = page.locator('#port-out-form');
  await form.getByLabel('Customer').selectOption({ label: customer });
  await form.getByLabel('Numbers won by the other carrier').fill(`${assigned}\n${other}`);
  await form.getByLabel('Gaining carrier').fill('Other Telco');
  await form.getByLabel('Due date').fill(due);
  await shot('form');
  await form.getByRole('button', { name: 'Record port-out' }).click();
  await page.waitForURL('**/operator/releases/*');
  check((await page.textContent('#kind')).includes('port_out'), 'the release is a port-out');
  check((await page.textContent('#reason')).includes(WHY), `the release says "${WHY}"`);
  step('the operator recorded a port-out due today');

  // The removal runs; the assigned number is blocked, with what blocks it, and can be tried again.
  for (let i = 0; i < 100; i++) {
    const text = await page.textContent('#lines');
    if (text.includes(BLOCKED) && (await line(other).textContent()).includes('released')) break;
    await page.waitForTimeout(200);
    await page.reload();
  }
  check((await line(other).textContent()).includes('released'), `${other} was removed from Zoom`);
  check((await line(assigned).textContent()).includes(BLOCKED), `${assigned} shows what blocks it`);
  check((await line(assigned).textContent()).includes('assigned to a user'), `${assigned} shows it is assigned in Zoom`);
  check(await page.getByRole('button', { name: 'Try removing from Zoom again now' }).isVisible(), 'the operator can force another try');
  await shot('blocked');
  step(`${other} removed; ${assigned} blocked: "${BLOCKED}"`);

  // The customer's admin sees why, and is asked nothing.
  page = await portalContext.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(`${platform}/portal/login`);
  await page.getByLabel('E-mail').fill(portalEmail);
  await page.getByLabel('Password').fill(portalPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${platform}/portal`);
  await page.goto(`${platform}/portal/releases`);
  await page.getByRole('heading', { name: 'Wait for Release', level: 1 }).waitFor();
  for (const n of [assigned, other]) {
    const row = page.locator(`#releases tr[data-number="${n}"]`);
    check((await row.textContent()).includes(WHY), `${n} shows "${WHY}"`);
  }
  check((await page.locator(`#releases tr[data-number="${assigned}"]`).textContent()).includes('No longer routes'), `${assigned} says it no longer routes`);
  check((await page.locator('#releases input[type=checkbox]').count()) === 0, 'nothing to tick: no approval is asked');
  await shot('customer');
  step('the customer sees why, and is asked nothing');

  console.log('all checks passed');
  await browser.close();
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : `FAIL: ${e.stack || e}`);
  console.error(`(at ${page.url()})`);
  await browser.close();
  process.exit(1);
}
